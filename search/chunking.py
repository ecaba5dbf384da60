"""Cutting a text into chunks of at most ``max_tokens`` tokens.

Pure: it takes the text and the character spans of its tokens (from the
model's own tokenizer, without special tokens) and returns character spans.
Cuts fall at the best boundary in the second half of the window: a paragraph
break, then a line break, then a sentence end, then any space; a run of
text with no space in it (a long URL, a table of digits) is cut mid-word as a
last resort. Consecutive chunks share up to ``overlap`` tokens, started at a
word boundary.

Guarantees, checked by property tests: ``text[chunk.start:chunk.end]`` is
the chunk's text; chunks are in order; every character that is not
whitespace lies in at least one chunk; a chunk has at most ``max_tokens``
tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.errors import InvalidInputError

TokenSpan = tuple[int, int]

_SENTENCE_END = (".", "!", "?", ".)", '."', ".'", ";", ":")


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    token_count: int


def boundary_score(text: str, offsets: Sequence[TokenSpan], i: int) -> int:
    """How good a cut before token ``i`` is: 4 paragraph ... 0 inside a word."""
    gap = text[offsets[i - 1][1] : offsets[i][0]]
    if not gap or not gap.isspace():
        return 0
    if gap.count("\n") >= 2:
        return 4
    if "\n" in gap:
        return 3
    before = text[max(offsets[i - 1][0], offsets[i - 1][1] - 2) : offsets[i - 1][1]]
    if before.endswith(_SENTENCE_END):
        return 2
    return 1


def chunk_spans(
    text: str, offsets: Sequence[TokenSpan], max_tokens: int, overlap: int = 0
) -> list[ChunkSpan]:
    """Chunk spans of ``text`` given its token ``offsets`` (sorted, disjoint)."""
    if max_tokens < 2:
        raise InvalidInputError("max_tokens must be at least 2")
    if not 0 <= overlap < max_tokens // 2:
        raise InvalidInputError("overlap must be at least 0 and under max_tokens / 2")
    n = len(offsets)
    if n == 0:
        return []

    # Each token range [s, i) becomes one chunk; `cuts` records them.
    cuts: list[tuple[int, int]] = []
    s = 0
    while True:
        if n - s <= max_tokens:
            cuts.append((s, n))
            break
        i = _best_cut(text, offsets, s, max_tokens)
        cuts.append((s, i))
        s = _overlap_start(text, offsets, i, overlap) if overlap else i

    return [_span(text, offsets, s, i) for s, i in cuts]


def _best_cut(text: str, offsets: Sequence[TokenSpan], s: int, max_tokens: int) -> int:
    best_i, best_score = s + max_tokens, -1
    for i in range(s + max_tokens, s + max_tokens // 2, -1):
        score = boundary_score(text, offsets, i)
        if score > best_score:
            best_i, best_score = i, score
            if score == 4:
                break
    return best_i


def _overlap_start(
    text: str, offsets: Sequence[TokenSpan], cut: int, overlap: int
) -> int:
    """The earliest word start in the last ``overlap`` tokens before ``cut``."""
    for j in range(cut - overlap, cut):
        if boundary_score(text, offsets, j) > 0:
            return j
    return cut


def _span(text: str, offsets: Sequence[TokenSpan], s: int, i: int) -> ChunkSpan:
    """Characters of tokens [s, i), widened over untokenized characters.

    A tokenizer may drop characters (control characters, for instance); the
    span runs from the end of the previous token's gap to the start of the
    next token, minus surrounding whitespace, so that nothing is lost.
    """
    start = 0 if s == 0 else offsets[s - 1][1]
    end = len(text) if i == len(offsets) else offsets[i][0]
    segment = text[start:end]
    start += len(segment) - len(segment.lstrip())
    end -= len(segment) - len(segment.rstrip())
    # Whitespace-only widening never moves a span past its own tokens.
    start = min(start, offsets[s][0])
    end = max(end, offsets[i - 1][1])
    return ChunkSpan(start=start, end=end, token_count=i - s)
