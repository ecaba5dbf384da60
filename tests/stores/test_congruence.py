"""EdgeStore and ServerStore give the same answers to the same random operations.

Each seed runs the same upserts (new points and replacements), deletes by id
and by filter on the real edge engine and on qdrant-client's in-memory mode,
then random filtered searches, counts, facets and scrolls on both. Searches
must return the same ids in the same order with scores within 1e-5, and agree
with a float64 brute force. Queries whose top scores lie closer than 1e-4 are
skipped: there the order is float rounding, not behaviour.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from search.stores import EdgeStore, Filter, Point, ServerStore, VectorStore

from .oracle import (
    ARRAYS,
    DIM,
    KEYWORDS,
    NAME,
    brute_force,
    facet_counts,
    random_filter,
    random_points,
    spec,
    unit_vectors,
)

SEEDS = range(3)
QUERIES = 30
GAP = 1e-4


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[EdgeStore, ServerStore]]:
    edge, server = EdgeStore(tmp_path), ServerStore(QdrantClient(":memory:"))
    for store in (edge, server):
        store.create_collection(NAME, spec(DIM))
    yield edge, server
    edge.close()
    server.close()


def apply_random_updates(
    rng: np.random.Generator, stores: tuple[VectorStore, ...]
) -> dict[str, Point]:
    """Upsert, replace and delete on every store alike; the points left."""
    live: dict[str, Point] = {}

    def upsert(points: list[Point]) -> None:
        for store in stores:
            store.upsert(NAME, points)
        live.update((p.id, p) for p in points)

    upsert(random_points(rng, 300, DIM))
    for _ in range(2):
        # Each edge write ends with a flush, so one call holds a round's upserts.
        replaced = rng.choice(sorted(live), size=20, replace=False)
        fresh = random_points(rng, 50, DIM)
        replacements = [
            Point(str(i), p.vector, p.payload)
            for i, p in zip(replaced, fresh[:20], strict=True)
        ]
        upsert(replacements + fresh[20:])

        doomed = [str(i) for i in rng.choice(sorted(live), size=15, replace=False)]
        for store in stores:
            store.delete(NAME, doomed)
        for point_id in doomed:
            del live[point_id]

    filter = Filter(must=(random_filter(rng).must or random_filter(rng).must)[:1])
    if filter:
        for store in stores:
            store.delete_by_filter(NAME, filter)
        removed = _ids(live, filter)
        live = {i: p for i, p in live.items() if i not in removed}
    return live


def _ids(live: dict[str, Point], filter: Filter) -> set[str]:
    query = np.ones(DIM, dtype=np.float32)
    return {i for i, _ in brute_force(live, query, filter)}


def scroll_all(store: VectorStore, filter: Filter | None) -> list[str]:
    ids: list[str] = []
    offset: str | None = None
    while True:
        page, offset = store.scroll(NAME, filter=filter, limit=37, offset=offset)
        ids.extend(p.id for p in page)
        if offset is None:
            return ids


def separated(scores: list[float], end: int) -> bool:
    """Whether the first ``end`` scores (and the next one) have no near ties."""
    window = scores[: end + 1]
    return all(a - b > GAP for a, b in itertools.pairwise(window))


@pytest.mark.parametrize("seed", SEEDS)
def test_same_answers(stores: tuple[EdgeStore, ServerStore], seed: int) -> None:
    rng = np.random.default_rng(seed)
    edge, server = stores
    live = apply_random_updates(rng, stores)
    assert edge.count(NAME) == server.count(NAME) == len(live)

    compared = 0
    for query in unit_vectors(rng, QUERIES, DIM):
        filter = random_filter(rng) if rng.random() < 0.8 else None
        top_k, offset = int(rng.integers(1, 20)), int(rng.choice([0, 0, 3, 10]))
        expected = brute_force(live, query, filter)
        assert edge.count(NAME, filter) == server.count(NAME, filter) == len(expected)
        if not separated([s for _, s in expected], top_k + offset):
            continue

        hits = {
            kind: store.search(NAME, query, top_k, filter, offset)
            for kind, store in (("edge", edge), ("server", server))
        }
        want = expected[offset : offset + top_k]
        for found in hits.values():
            assert [h.id for h in found] == [i for i, _ in want]
            assert [h.score for h in found] == pytest.approx(
                [s for _, s in want], abs=1e-5
            )
        edge_scores = [h.score for h in hits["edge"]]
        assert edge_scores == pytest.approx([h.score for h in hits["server"]], abs=1e-5)
        assert [h.payload for h in hits["edge"]] == [h.payload for h in hits["server"]]
        compared += 1
    assert compared >= QUERIES // 2

    for _ in range(4):
        filter = random_filter(rng)
        assert scroll_all(edge, filter) == scroll_all(server, filter)
        assert scroll_all(edge, filter) == sorted(_ids(live, filter))
        for key in (*ARRAYS, str(rng.choice(KEYWORDS))):
            want_counts = facet_counts(live.values(), key, filter)
            assert edge.facet(NAME, key, filter) == want_counts
            assert server.facet(NAME, key, filter) == want_counts
