"""Keyword (sparse, IDF) and hybrid (fused) search: both stores against an oracle.

Points get BM25-like sparse vectors over a small vocabulary, so that terms
are shared and IDF matters. Sparse search must match a float64 oracle that
applies Qdrant's IDF (over the points that hold a sparse vector); hybrid
search with RRF must match reciprocal rank fusion of the two oracle lists
(ranks from 0, as Qdrant counts them); DBSF is held to agreement between the
stores. Queries with near-tied scores are skipped, as in test_congruence.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from search.errors import InvalidInputError
from search.stores import EdgeStore, Fusion, Point, ServerStore, SparseVector
from search.stores.base import CollectionSpec

from .oracle import (
    DIM,
    INDEXES,
    NAME,
    brute_force,
    matches,
    random_filter,
    random_points,
)
from .test_congruence import separated

VOCABULARY = 40
# Ranks feed RRF: within a candidate list, scores closer than float32
# rounding could swap places between engines.
RANK_GAP = 5e-6


def distinct(scores: list[float], end: int) -> bool:
    window = scores[: end + 1]
    return all(a - b > RANK_GAP for a, b in itertools.pairwise(window))


def sparse_spec() -> CollectionSpec:
    return CollectionSpec(dimension=DIM, indexes=INDEXES, sparse=True)


def random_sparse(rng: np.random.Generator) -> SparseVector:
    size = int(rng.integers(0, 8))
    # Zipf-like: low term ids are common, high ones rare.
    terms = sorted({int(min(rng.zipf(1.3), VOCABULARY)) for _ in range(size)})
    return SparseVector(
        tuple(terms), tuple(float(rng.uniform(0.2, 2.2)) for _ in terms)
    )


def sparse_points(rng: np.random.Generator, n: int) -> list[Point]:
    return [replace(p, sparse=random_sparse(rng)) for p in random_points(rng, n, DIM)]


def idf(points: list[Point], term: int) -> float:
    holders = [p for p in points if p.sparse is not None and p.sparse.indices]
    n = sum(1 for p in holders if term in p.sparse.indices)  # type: ignore[union-attr]
    return math.log(1 + (len(holders) - n + 0.5) / (n + 0.5))


def sparse_oracle(
    points: list[Point], query: SparseVector, filter: object
) -> list[tuple[str, float]]:
    weights = {
        t: w * idf(points, t) for t, w in zip(query.indices, query.values, strict=True)
    }
    scored = []
    for p in points:
        if not matches(p.payload, filter) or p.sparse is None:  # type: ignore[arg-type]
            continue
        score = sum(
            weights.get(t, 0.0) * v
            for t, v in zip(p.sparse.indices, p.sparse.values, strict=True)
        )
        if any(t in weights for t in p.sparse.indices):
            scored.append((p.id, score))
    return sorted(scored, key=lambda item: -item[1])


def rrf(lists: list[list[str]], k: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion, the plain way (ranks from 0, as Qdrant counts)."""
    scores: dict[str, float] = {}
    for ranked in lists:
        for rank, point_id in enumerate(ranked):
            scores[point_id] = scores.get(point_id, 0.0) + 1 / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[EdgeStore, ServerStore]]:
    edge, server = EdgeStore(tmp_path), ServerStore(QdrantClient(":memory:"))
    for store in (edge, server):
        store.create_collection(NAME, sparse_spec())
    yield edge, server
    edge.close()
    server.close()


@pytest.mark.parametrize("seed", range(3))
def test_sparse_search_is_idf_weighted_dot_product(
    stores: tuple[EdgeStore, ServerStore], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    points = sparse_points(rng, 250)
    for store in stores:
        store.upsert(NAME, points)
        assert store.has_sparse(NAME)

    compared = 0
    for _ in range(25):
        query = random_sparse(rng)
        if not query.indices:
            continue
        query = SparseVector(query.indices, tuple(1.0 for _ in query.indices))
        filter = random_filter(rng) if rng.random() < 0.6 else None
        top_k = int(rng.integers(1, 15))
        expected = sparse_oracle(points, query, filter)
        if not separated([s for _, s in expected], top_k):
            continue
        want = expected[:top_k]
        for store in stores:
            hits = store.search_sparse(NAME, query, top_k, filter)
            assert [h.id for h in hits] == [i for i, _ in want]
            assert [h.score for h in hits] == pytest.approx(
                [s for _, s in want], rel=1e-4, abs=1e-5
            )
        compared += 1
    assert compared >= 8


@pytest.mark.parametrize("seed", range(3))
def test_hybrid_rrf_fuses_the_two_candidate_lists(
    stores: tuple[EdgeStore, ServerStore], seed: int
) -> None:
    rng = np.random.default_rng(100 + seed)
    points = sparse_points(rng, 250)
    live = {p.id: p for p in points}
    for store in stores:
        store.upsert(NAME, points)

    compared = 0
    for query_vector in rng.standard_normal((40, DIM)).astype(np.float32):
        sparse = random_sparse(rng)
        if not sparse.indices:
            continue
        sparse = SparseVector(sparse.indices, tuple(1.0 for _ in sparse.indices))
        filter = random_filter(rng) if rng.random() < 0.5 else None
        top_k, prefetch, k = int(rng.integers(1, 10)), int(rng.integers(10, 40)), 60
        dense = brute_force(live, query_vector, filter)
        keyword = sparse_oracle(points, sparse, filter)
        if not (
            distinct([s for _, s in dense], prefetch)
            and distinct([s for _, s in keyword], prefetch)
        ):
            continue
        fused = rrf(
            [[i for i, _ in dense[:prefetch]], [i for i, _ in keyword[:prefetch]]], k
        )
        if not separated([s for _, s in fused], top_k):
            continue
        want = fused[:top_k]
        for store in stores:
            hits = store.search_hybrid(
                NAME, query_vector, sparse, top_k, filter, prefetch=prefetch, rrf_k=k
            )
            assert [h.id for h in hits] == [i for i, _ in want]
            assert [h.score for h in hits] == pytest.approx(
                [s for _, s in want], abs=1e-6
            )
        compared += 1
    assert compared >= 5


def test_hybrid_dbsf_agrees_between_stores(
    stores: tuple[EdgeStore, ServerStore],
) -> None:
    rng = np.random.default_rng(7)
    points = sparse_points(rng, 200)
    for store in stores:
        store.upsert(NAME, points)
    edge, server = stores
    for query_vector in rng.standard_normal((10, DIM)).astype(np.float32):
        sparse = SparseVector((1, 2, 5), (1.0, 1.0, 1.0))
        found = [
            store.search_hybrid(
                NAME, query_vector, sparse, 8, prefetch=30, fusion=Fusion.DBSF
            )
            for store in (edge, server)
        ]
        scores = [[h.score for h in hits] for hits in found]
        assert scores[0] == pytest.approx(scores[1], abs=1e-4)
        assert scores[0] == sorted(scores[0], reverse=True)


def test_pages_of_a_hybrid_query_follow_each_other(
    stores: tuple[EdgeStore, ServerStore],
) -> None:
    rng = np.random.default_rng(3)
    points = sparse_points(rng, 200)
    for store in stores:
        store.upsert(NAME, points)
        query = rng.standard_normal(DIM).astype(np.float32)
        sparse = SparseVector((1, 3), (1.0, 1.0))
        whole = store.search_hybrid(NAME, query, sparse, 20, prefetch=40)
        first = store.search_hybrid(NAME, query, sparse, 10, prefetch=40)
        second = store.search_hybrid(NAME, query, sparse, 10, offset=10, prefetch=40)
        # Fused scores tie often (one list's rank r against the other's); the
        # engine orders ties as it likes, so pages agree on scores. The
        # Searcher orders ties by id (tests/ingest/test_modes.py).
        assert [h.score for h in first + second] == [h.score for h in whole]


def test_a_collection_without_sparse_vectors_refuses_keyword_search(
    tmp_path: Path,
) -> None:
    edge, server = EdgeStore(tmp_path), ServerStore(QdrantClient(":memory:"))
    try:
        for store in (edge, server):
            store.create_collection(
                NAME, CollectionSpec(dimension=DIM, indexes=INDEXES)
            )
            assert not store.has_sparse(NAME)
            with pytest.raises(InvalidInputError, match="no keyword index"):
                store.search_sparse(NAME, SparseVector((1,), (1.0,)), 5)
            with pytest.raises(InvalidInputError, match="without a sparse vector"):
                store.create_collection(NAME, sparse_spec())
    finally:
        edge.close()
        server.close()


@pytest.mark.parametrize(
    "vector",
    [
        SparseVector((1, 1), (1.0, 2.0)),
        SparseVector((-1,), (1.0,)),
        SparseVector((2**32,), (1.0,)),
        SparseVector((3,), (float("nan"),)),
    ],
    ids=["repeated", "negative", "too large", "nan"],
)
def test_bad_sparse_vectors_are_refused(
    stores: tuple[EdgeStore, ServerStore], vector: SparseVector
) -> None:
    for store in stores:
        with pytest.raises(InvalidInputError):
            store.search_sparse(NAME, vector, 5)


def test_a_sparse_vector_needs_one_value_per_index() -> None:
    with pytest.raises(ValueError, match="one value per index"):
        SparseVector((1, 2), (1.0,))
