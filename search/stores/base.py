"""The vector store interface: one small vocabulary, two implementations.

A *collection* holds *points*: an id (a UUID string), one dense vector,
optionally a sparse (BM25) vector, and a *payload* (a JSON object). Filters
are plain values built from the conditions below, translated by each
implementation into its engine's filter. Dense scores are cosine similarities
(collections are created with the cosine distance); sparse scores are
IDF-weighted dot products; fused scores are the fusion's.

Implementations: :mod:`search.stores.edge` (qdrant-edge-py, in-process, the
embedded default) and :mod:`search.stores.server` (qdrant-client, a Qdrant
server or its in-memory mode). Both must give the same ids and scores for the
same operations; tests/stores/test_congruence.py holds them to that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

PayloadValue = str | int | float | bool | None | list[Any] | dict[str, Any]
Payload = dict[str, Any]


class FieldType(Enum):
    """Payload index types the stores create for filter fields."""

    KEYWORD = "keyword"
    INTEGER = "integer"


#: The name of the sparse (BM25) vector in a collection made with ``sparse``.
SPARSE_VECTOR = "bm25"


@dataclass(frozen=True)
class SparseVector:
    """Term ids (sorted, distinct) and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("a sparse vector needs one value per index")


class Fusion(Enum):
    """How a hybrid query merges its dense and sparse candidate lists.

    ``RRF``: reciprocal rank fusion, sum of 1 / (k + rank) with ranks from 0
    (Qdrant's convention). ``DBSF``: distribution-based score fusion, each
    list's scores normalized by their mean and 3 standard deviations, summed.
    """

    RRF = "rrf"
    DBSF = "dbsf"


@dataclass(frozen=True)
class Point:
    id: str
    vector: npt.NDArray[np.float32]
    payload: Payload
    sparse: SparseVector | None = None


@dataclass(frozen=True)
class ScoredPoint:
    id: str
    score: float
    payload: Payload


@dataclass(frozen=True)
class MatchAny:
    """The field (or one element of an array field) equals one of ``values``."""

    key: str
    values: tuple[str | int, ...]


@dataclass(frozen=True)
class MatchAll:
    """An array field holds every one of ``values``."""

    key: str
    values: tuple[str | int, ...]


@dataclass(frozen=True)
class Range:
    """An integer field lies in [gte, lte]; a None bound is open."""

    key: str
    gte: int | None = None
    lte: int | None = None


Condition = MatchAny | MatchAll | Range


@dataclass(frozen=True)
class Filter:
    """Points that meet every ``must`` condition and no ``must_not`` one."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.must or self.must_not)


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection is made with: vector size and indexed payload fields."""

    dimension: int
    indexes: Mapping[str, FieldType] = field(default_factory=dict)
    #: Also a sparse vector (``SPARSE_VECTOR``) with Qdrant's IDF modifier.
    sparse: bool = False


class VectorStore(Protocol):
    """The operations semsearch needs of Qdrant, in its own vocabulary."""

    def create_collection(self, name: str, spec: CollectionSpec) -> None:
        """Create ``name`` with cosine vectors and payload indexes; idempotent."""

    def collection_exists(self, name: str) -> bool: ...

    def delete_collection(self, name: str) -> None: ...

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id; durable when this returns."""

    def delete(self, name: str, ids: Sequence[str]) -> None: ...

    def delete_by_filter(self, name: str, filter: Filter) -> None: ...

    def search(
        self,
        name: str,
        vector: npt.NDArray[np.float32],
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
    ) -> list[ScoredPoint]:
        """The ``top_k`` points closest to ``vector`` after ``offset``, best first."""

    def search_sparse(
        self,
        name: str,
        vector: SparseVector,
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
    ) -> list[ScoredPoint]:
        """The ``top_k`` points of highest IDF-weighted dot product with ``vector``."""

    def search_hybrid(
        self,
        name: str,
        dense: npt.NDArray[np.float32],
        sparse: SparseVector,
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
        *,
        fusion: Fusion = Fusion.RRF,
        rrf_k: int = 60,
        prefetch: int,
    ) -> list[ScoredPoint]:
        """One query: ``prefetch`` dense and ``prefetch`` sparse candidates, fused.

        Both candidate lists are filtered; the fused list is cut to ``top_k``
        after ``offset``.
        """

    def has_sparse(self, name: str) -> bool:
        """Whether ``name`` was made with a sparse vector."""

    def count(self, name: str, filter: Filter | None = None) -> int: ...

    def facet(
        self, name: str, key: str, filter: Filter | None = None, limit: int = 100
    ) -> dict[str | int, int]:
        """How many points hold each value of ``key`` (array elements counted)."""

    def scroll(
        self,
        name: str,
        filter: Filter | None = None,
        limit: int = 256,
        offset: str | None = None,
    ) -> tuple[list[ScoredPoint], str | None]:
        """A page of points (score 0) ordered by id, and the next page's offset."""

    def close(self) -> None: ...
