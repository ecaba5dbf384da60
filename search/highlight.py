"""Query terms marked in passage text, for result snippets.

Matching is by word, case-insensitive and accent-insensitive, and lenient
about endings: a query word matches a text word that starts with it, or with
its stem when the word is long enough to have one ("backups" finds
"backup", "backed" finds "back"). Very common words are not marked.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

WORD = re.compile(r"\w+", re.UNICODE)

# Words too common to be worth marking in a passage.
STOP_WORDS = frozenset(
    """a an and are as at be but by can do does for from has have how i if in
    into is it its my no not of on or our so than that the their them then there
    these they this to was we were what when where which who why will with you
    your""".split()  # noqa: SIM905 - a list of 60 words reads better as text
)


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(word: str) -> str:
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def query_terms(query: str) -> list[str]:
    """The words of ``query`` worth marking, folded and stemmed, longest first."""
    terms = {_stem(_fold(w)) for w in WORD.findall(query) if _fold(w) not in STOP_WORDS}
    return sorted((t for t in terms if len(t) >= 2), key=lambda t: (-len(t), t))


def term_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of the words of ``text`` that match one of ``terms``."""
    wanted = tuple(terms)
    if not wanted:
        return []
    return [
        m.span() for m in WORD.finditer(text) if _fold(m.group()).startswith(wanted)
    ]


def highlight_html(text: str, query: str, tag: str = "mark") -> str:
    """``text`` escaped for HTML with the query's terms wrapped in ``<tag>``."""
    parts = []
    last = 0
    for start, end in term_spans(text, query_terms(query)):
        parts.append(html.escape(text[last:start]))
        parts.append(f"<{tag}>{html.escape(text[start:end])}</{tag}>")
        last = end
    parts.append(html.escape(text[last:]))
    return "".join(parts)


SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (and paragraphs) of ``text``."""
    spans = []
    start = 0
    for match in SENTENCE_END.finditer(text):
        if text[start : match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def best_sentences(
    texts: list[str],
    query_vector: npt.NDArray[np.float32],
    encode: Callable[[list[str]], npt.NDArray[np.float32]],
) -> list[str | None]:
    """For each text, its sentence closest in meaning to the query (one batch).

    For passages that matched by meaning without sharing a word with the
    query: the snippet then shows where the match is. None for a text of one
    sentence or none.
    """
    spans = [sentence_spans(t) for t in texts]
    sentences = [t[a:b] for t, ss in zip(texts, spans, strict=True) for a, b in ss]
    if not sentences:
        return [None] * len(texts)
    scores = encode(sentences) @ query_vector
    best: list[str | None] = []
    position = 0
    for ss, text in zip(spans, texts, strict=True):
        if len(ss) < 2:
            best.append(None)
        else:
            i = int(np.argmax(scores[position : position + len(ss)]))
            best.append(text[ss[i][0] : ss[i][1]])
        position += len(ss)
    return best


def snippet(text: str, query: str, width: int = 320, focus: str | None = None) -> str:
    """About ``width`` characters of ``text`` around most of the query's terms.

    Whitespace runs become one space. A passage no longer than ``width`` is
    kept whole; a longer one is cut at word boundaries to the window holding
    the most matching words; when none match, to the window starting at
    ``focus`` (a piece of ``text``, such as :func:`best_sentences` finds), else
    at the start; with an ellipsis where it was cut.
    """
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    starts = [start for start, _ in term_spans(flat, query_terms(query))]
    context = width // 5
    if not starts and focus:
        found = flat.find(" ".join(focus.split()))
        starts, context = ([found], 0) if found >= 0 else ([], context)
    best, best_count = 0, 0
    for i, start in enumerate(starts):
        count = sum(1 for s in starts[i:] if s < start + width)
        if count > best_count:
            best, best_count = start, count
    # Some words of context before the first match (a sentence starts itself).
    begin = max(0, best - context)
    if begin > 0 and flat[begin - 1] != " ":  # mid-word: start at the next one
        begin = flat.find(" ", begin) + 1 or begin
    end = min(len(flat), begin + width)
    if end < len(flat):
        cut = flat.rfind(" ", begin, end)
        end = cut if cut > begin else end
    return (
        ("… " if begin > 0 else "")
        + flat[begin:end]
        + (" …" if end < len(flat) else "")
    )
