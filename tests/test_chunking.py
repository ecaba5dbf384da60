"""Chunking: exact offsets, nothing lost, size limits, preferred boundaries."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from search.chunking import ChunkSpan, chunk_spans
from search.errors import InvalidInputError


def simple_offsets(text: str) -> list[tuple[int, int]]:
    """Words and punctuation; control characters are dropped, as BERT's are."""
    return [m.span() for m in re.finditer(r"[^\W_]+|[^\w\s\x00-\x1f]", text)]


TEXTS = st.text(
    alphabet=st.sampled_from([*list("abcde fgh.,!?\n\t"), "\x00", "é", "ß", "漢", "_"]),
    max_size=600,
)


def check_invariants(text: str, spans: list[ChunkSpan], max_tokens: int) -> None:
    covered = [False] * len(text)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert 1 <= span.token_count <= max_tokens
        assert not text[span.start].isspace()
        assert not text[span.end - 1].isspace()
        for k in range(span.start, span.end):
            covered[k] = True
    for a, b in itertools.pairwise(spans):
        assert a.start < b.start
        assert a.end <= b.end
    lost = [
        c for c, seen in zip(text, covered, strict=True) if not seen and not c.isspace()
    ]
    assert lost == []


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, max_tokens=st.integers(2, 40), overlap_share=st.floats(0, 0.49))
def test_invariants_hold_for_any_text(
    text: str, max_tokens: int, overlap_share: float
) -> None:
    overlap = min(int(max_tokens * overlap_share), max_tokens // 2 - 1)
    overlap = max(overlap, 0)
    offsets = simple_offsets(text)
    spans = chunk_spans(text, offsets, max_tokens, overlap)
    if not offsets:
        assert spans == []
        return
    check_invariants(text, spans, max_tokens)


@pytest.fixture(scope="module")
def bert_tokenizer(minilm_path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=400), max_tokens=st.integers(4, 64))
def test_invariants_hold_with_the_model_tokenizer(
    bert_tokenizer: Tokenizer, text: str, max_tokens: int
) -> None:
    offsets = bert_tokenizer.encode(text, add_special_tokens=False).offsets
    offsets = [o for o in offsets if o[1] > o[0]]
    spans = chunk_spans(text, offsets, max_tokens, overlap=max_tokens // 4)
    if not offsets:
        # Only characters the tokenizer drops: nothing the model could see.
        assert spans == []
        return
    check_invariants(text, spans, max_tokens)


def test_cuts_prefer_paragraphs_then_sentences() -> None:
    first = "One two three four five six. Seven eight nine."
    second = "Ten eleven twelve thirteen."
    text = f"{first}\n\n{second}"
    spans = chunk_spans(text, simple_offsets(text), max_tokens=14)
    assert [text[s.start : s.end] for s in spans] == [first, second]

    sentence = "Alpha beta gamma delta. Epsilon zeta eta theta iota kappa"
    spans = chunk_spans(sentence, simple_offsets(sentence), max_tokens=8)
    assert sentence[spans[0].start : spans[0].end] == "Alpha beta gamma delta."


def test_overlap_repeats_the_tail_of_the_previous_chunk() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    spans = chunk_spans(text, simple_offsets(text), max_tokens=20, overlap=5)
    for a, b in itertools.pairwise(spans):
        shared = text[b.start : a.end].split()
        assert len(shared) == 5
    assert all(s.token_count <= 20 for s in spans)


def test_a_word_longer_than_the_window_is_cut() -> None:
    text = "x" * 50
    offsets = [(i, i + 1) for i in range(50)]
    spans = chunk_spans(text, offsets, max_tokens=16)
    assert [s.token_count for s in spans] == [16, 16, 16, 2]
    assert "".join(text[s.start : s.end] for s in spans) == text


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError):
        chunk_spans("a b", [(0, 1), (2, 3)], max_tokens=1)
    with pytest.raises(InvalidInputError):
        chunk_spans("a b", [(0, 1), (2, 3)], max_tokens=10, overlap=5)
