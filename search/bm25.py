"""BM25 as sparse vectors: term weights for chunks, term lists for queries.

BM25 scores a chunk d for a query q as

    sum over terms t of q:  idf(t) * tf(t, d) * (k1 + 1)
                            / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

The factor after idf depends only on the chunk (and the collection's average
length ``avgdl``), so it is stored as the chunk's sparse vector. ``idf`` is
left to Qdrant's IDF modifier, which computes it from the collection at query
time, so that it never goes stale as documents come and go:

    idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))

with N the number of chunks and n(t) those holding t. A query's vector has
weight 1 for each of its distinct terms, so that the store's dot product of
the two (times idf) is the BM25 score.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from search.analysis import term_id
from search.stores.base import SparseVector

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class BM25Params:
    k1: float = K1
    b: float = B

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError("BM25 needs k1 >= 0 and 0 <= b <= 1")


def document_vector(
    terms: Sequence[str], avg_length: float, params: BM25Params = BM25Params()
) -> SparseVector:
    """The BM25 weights of one chunk's terms (idf left to the store)."""
    counts = _counts_by_id(terms)
    if not counts:
        return SparseVector((), ())
    length = len(terms)
    norm = params.k1 * (1 - params.b + params.b * length / max(avg_length, 1e-9))
    indices = sorted(counts)
    values = tuple(counts[i] * (params.k1 + 1) / (counts[i] + norm) for i in indices)
    return SparseVector(tuple(indices), values)


def query_vector(terms: Iterable[str]) -> SparseVector:
    """Weight 1 for each distinct query term."""
    indices = sorted({term_id(t) for t in terms})
    return SparseVector(tuple(indices), tuple(1.0 for _ in indices))


def idf(chunks: int, containing: int) -> float:
    """The IDF Qdrant's modifier applies (for reference and tests)."""
    return math.log(1 + (chunks - containing + 0.5) / (containing + 0.5))


def _counts_by_id(terms: Sequence[str]) -> Counter[int]:
    return Counter(term_id(t) for t in terms)
