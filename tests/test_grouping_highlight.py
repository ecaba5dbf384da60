"""Grouping hits per document, marking query terms, the search page's URL."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from search.errors import InvalidInputError
from search.grouping import group_hits
from search.highlight import (
    best_sentences,
    highlight_html,
    query_terms,
    sentence_spans,
    snippet,
    term_spans,
)
from search.retrieval import Hit
from ui.params import PageState, from_query_params, to_query_params


def _hit(document: str, ordinal: int, score: float) -> Hit:
    return Hit(
        document_id=document,
        chunk_ordinal=ordinal,
        score=score,
        text=f"text {document} {ordinal}",
        title=document.upper(),
        path=f"/docs/{document}.txt",
        page=None,
        char_start=0,
        char_end=10,
        file_type="txt",
    )


hits_strategy = st.lists(
    st.tuples(
        st.sampled_from("abcdef"),
        st.integers(0, 30),
        st.floats(-1, 1, allow_nan=False),
    ),
    unique_by=lambda t: (t[0], t[1]),
    max_size=40,
).map(lambda rows: [_hit(*row) for row in rows])


@given(hits_strategy, st.integers(1, 4))
def test_grouping_keeps_each_document_once_best_first(
    hits: list[Hit], per_document: int
) -> None:
    results = group_hits(hits, per_document)

    ids = [r.document_id for r in results]
    assert len(ids) == len(set(ids)) == len({h.document_id for h in hits})
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    for result in results:
        mine = sorted(
            (h.score for h in hits if h.document_id == result.document_id),
            reverse=True,
        )
        assert [p.score for p in result.passages] == mine[:per_document]
        assert result.score == mine[0]
        assert {p.document_id for p in result.passages} == {result.document_id}


def test_grouping_refuses_zero_passages() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        group_hits([_hit("a", 0, 0.5)], 0)


def test_query_terms_drop_stop_words_and_endings() -> None:
    assert query_terms("How do I restore the backups?") == ["restore", "backup"]
    assert query_terms("Ça marche") == ["marche", "ca"]


def test_terms_are_marked_by_word_and_the_rest_is_escaped() -> None:
    text = "Backups <b>run</b> nightly; a backup-restore drill runs too. Background."
    marked = highlight_html(text, "backup restore")

    assert marked.count("<mark>") == 3
    assert "<mark>Backups</mark>" in marked
    assert "<mark>backup</mark>-<mark>restore</mark>" in marked
    assert "&lt;b&gt;run&lt;/b&gt;" in marked
    assert "<b>" not in marked


def test_accents_and_case_do_not_hide_a_match() -> None:
    assert term_spans("Café CAFES", query_terms("cafe")) == [(0, 4), (5, 10)]


def test_a_query_of_stop_words_marks_nothing() -> None:
    assert highlight_html("the <end>", "the and of") == "the &lt;end&gt;"


states = st.builds(
    PageState,
    query=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(
        str.strip
    ),
    top_k=st.integers(1, 50),
    file_types=st.lists(st.sampled_from(["pdf", "md", "txt"]), unique=True).map(tuple),
    tags=st.lists(
        st.text("abcxyz-", min_size=1, max_size=6), unique=True, max_size=3
    ).map(tuple),
    tags_mode=st.sampled_from(["any", "all"]),
    path_prefix=st.sampled_from(["", "/srv/docs", "/home/a b"]),
    since=st.none() | st.dates(date(2000, 1, 1), date(2030, 1, 1)),
    until=st.none() | st.dates(date(2000, 1, 1), date(2030, 1, 1)),
    like=st.none() | st.tuples(st.uuids().map(str), st.integers(0, 500)),
    mode=st.sampled_from(["dense", "keyword", "hybrid"]),
)


@given(states)
def test_page_state_round_trips_through_the_url(state: PageState) -> None:
    if not state.tags:
        state = PageState(**{**state.__dict__, "tags_mode": "any"})
    params = to_query_params(state)
    assert from_query_params(params) == state


def test_bad_url_values_are_reported_not_raised() -> None:
    state = from_query_params({"q": "x", "k": "0", "since": "soon", "like": "nope"})
    assert state.top_k == 1
    assert state.since is None
    assert state.like is None
    assert len(state.problems) == 3


def test_an_inverted_range_is_refused_when_searching() -> None:
    state = from_query_params({"since": "2025-02-01", "until": "2025-01-01"})
    with pytest.raises(InvalidInputError, match="inverted"):
        state.filters()


def test_a_snippet_is_the_window_with_most_matches() -> None:
    filler = " ".join(f"word{i}" for i in range(200))
    text = f"{filler} the restore of a backup\n\n takes a day {filler}"
    cut = snippet(text, "backup restore", width=120)

    assert "restore of a backup takes a day" in cut
    assert cut.startswith("… ")
    assert cut.endswith(" …")
    assert len(cut) <= 120 + 4
    assert "\n" not in cut


def test_a_short_passage_is_kept_whole_and_no_match_starts_at_the_top() -> None:
    assert snippet("Short  text\nhere.", "x") == "Short text here."
    long_text = " ".join(f"w{i}" for i in range(300))
    cut = snippet(long_text, "nothing matches", width=50)
    assert cut.startswith("w0 w1")
    assert cut.endswith(" …")


@given(st.text(max_size=600), st.text(max_size=30), st.integers(20, 400))
def test_snippets_are_pieces_of_the_flattened_text(
    text: str, query: str, width: int
) -> None:
    cut = snippet(text, query, width)
    flat = " ".join(text.split())
    core = cut.removeprefix("… ").removesuffix(" …")
    assert core in flat
    assert len(core) <= max(width, 0) or core == flat


def test_sentences_are_split_at_ends_and_blank_lines() -> None:
    text = "First one. Second one!  Third?\n\nA paragraph without end\nstill going"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "First one.",
        "Second one!",
        "Third?",
        "A paragraph without end\nstill going",
    ]


def test_the_best_sentence_is_the_closest_in_meaning() -> None:
    def encode(sentences: list[str]) -> np.ndarray:
        # A stand-in model: one axis for "bees", one for everything else.
        return np.array([[1.0, 0.0] if "bees" in s else [0.0, 1.0] for s in sentences])

    texts = [
        "Flowers open in spring. Honey bees dance to point at them. Rain falls.",
        "One sentence only",
    ]
    best = best_sentences(texts, np.array([1.0, 0.0]), encode)
    assert best == ["Honey bees dance to point at them.", None]


def test_a_snippet_without_matching_words_starts_at_its_focus() -> None:
    filler = " ".join(f"w{i}" for i in range(100))
    text = f"{filler}. The waggle dance shows the way. {filler}."
    cut = snippet(text, "how do insects navigate", width=80, focus="The waggle dance")
    assert cut.startswith("… The waggle dance shows the way.")
