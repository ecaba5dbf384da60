"""Dense, keyword and hybrid search through ingest and the Searcher, both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.pipeline import IngestOptions, Ingestor
from search.app import App
from search.errors import InvalidInputError
from search.filters import SearchFilters
from search.retrieval import Ranking, Searcher
from search.stores.base import Fusion

TOPICS = [
    "backup of the team share every night to a second site",
    "password reset from the account page with an emailed link",
    "bread rises because yeast makes carbon dioxide",
    "descale the coffee machine every month",
    "the VPN client needs the certificate before it connects",
    "expense claims for taxis need a receipt",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(36):
        text = f"Note {i}. {TOPICS[i % len(TOPICS)]}. Reference code QX{i:03d}7."
        (folder / f"note{i:02d}.txt").write_text(text, encoding="utf-8")
    return folder


def _ingest(app: App, folder: Path) -> Searcher:
    Ingestor(app).run([folder], IngestOptions())
    return Searcher.for_app(app)


@pytest.fixture
def searcher(app: App, corpus: Path) -> Searcher:
    return _ingest(app, corpus)


def test_keyword_mode_finds_an_exact_identifier(app: App, corpus: Path) -> None:
    searcher = _ingest(app, corpus)
    hits = searcher.search("QX0177", top_k=3, mode="keyword")
    assert [Path(h.path).name for h in hits] == ["note17.txt"]


def test_keyword_mode_of_stop_words_finds_nothing(app: App, corpus: Path) -> None:
    searcher = _ingest(app, corpus)
    assert searcher.search("the of and", mode="keyword") == []
    # Hybrid falls back to meaning alone.
    assert len(searcher.search("the of and", top_k=4, mode="hybrid")) == 4


def test_hybrid_ranks_documents_with_the_words_above_the_rest(
    app: App,
    corpus: Path,
) -> None:
    """With RRF, a document in both candidate lists beats one in the dense list
    only (every note is among the dense candidates): the six coffee notes, the
    only ones with the query's words, come first whatever the (random) tiny
    model thinks, and the rest follow by meaning."""
    searcher = _ingest(app, corpus)
    hits = searcher.search("QX0217 coffee machine", top_k=8, mode="hybrid")
    names = [Path(h.path).name for h in hits]
    coffee = {f"note{i:02d}.txt" for i in range(3, 36, 6)}
    assert set(names[:6]) == coffee
    assert len(set(names)) == 8
    ranked = searcher.search(
        "QX0217 coffee machine", top_k=6, mode=Ranking.of("hybrid", fusion=Fusion.DBSF)
    )
    assert "note21.txt" in {Path(h.path).name for h in ranked}


def test_modes_go_through_the_same_filters(app: App, corpus: Path) -> None:
    searcher = _ingest(app, corpus)
    only = SearchFilters(path_prefix=str((corpus / "note05.txt").resolve()))
    for mode in ("dense", "keyword", "hybrid"):
        hits = searcher.search(
            "coffee machine descale", top_k=5, filters=only, mode=mode
        )
        assert {Path(h.path).name for h in hits} <= {"note05.txt"}


def test_unknown_mode_is_refused(app: App, corpus: Path) -> None:
    searcher = _ingest(app, corpus)
    with pytest.raises(InvalidInputError, match="unknown ranking mode"):
        searcher.search("coffee", mode="psychic")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    query=st.sampled_from(
        ["coffee machine", "QX0107 password", "receipt taxi", "yeast"]
    ),
    mode=st.sampled_from(["dense", "keyword", "hybrid"]),
    page_size=st.integers(1, 7),
)
def test_document_pages_are_disjoint_and_in_order(
    searcher: Searcher, query: str, mode: str, page_size: int
) -> None:
    # The fixture is made once for all examples: the index does not change.
    whole = searcher.search_documents(query, top_k=3 * page_size, passages=2, mode=mode)
    pages = [
        searcher.search_documents(
            query, top_k=page_size, offset=n * page_size, passages=2, mode=mode
        )
        for n in range(3)
    ]
    ids = [d.document_id for page in pages for d in page]
    assert len(ids) == len(set(ids))  # no document twice
    assert ids == [d.document_id for d in whole]  # pages are slices of one ranking
    scores = [d.score for page in pages for d in page]
    assert scores == sorted(scores, reverse=True)
