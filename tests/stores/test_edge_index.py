"""EdgeStore's HNSW index, built in a child process, against numpy brute force."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from search.errors import SemsearchError
from search.stores import CollectionSpec, EdgeStore, FieldType, Filter, MatchAny, Point
from search.stores import edge as edge_module

from .oracle import NAME, brute_force

DIM = 384
THRESHOLD = 2_000
SPEC = CollectionSpec(DIM, {"doc_id": FieldType.KEYWORD})
Vectors = npt.NDArray[np.float32]


def clustered(rng: np.random.Generator, n: int, centres: Vectors) -> Vectors:
    """Unit vectors around random centres, like embeddings of related passages."""
    picked = centres[rng.integers(len(centres), size=n)]
    vectors = picked + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    normed: Vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normed


@pytest.fixture(scope="module")
def data() -> tuple[list[Point], Vectors]:
    """2,400 points in 20 clusters (doc_id names the point's residue mod 20)."""
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((20, DIM)).astype(np.float32)
    points = [
        Point(
            str(uuid.UUID(bytes=rng.bytes(16), version=4)),
            v,
            {"doc_id": f"doc-{i % 20}"},
        )
        for i, v in enumerate(clustered(rng, 2_400, centres))
    ]
    return points, clustered(rng, 50, centres)


def exact_ids(
    live: dict[str, Point], query: Vectors, filter: Filter | None = None
) -> list[str]:
    return [i for i, _ in brute_force(live, query, filter)[:10]]


def recall_at_10(store: EdgeStore, live: dict[str, Point], queries: Vectors) -> float:
    found = 0
    for query in queries:
        hits = {h.id for h in store.search(NAME, query, top_k=10)}
        found += len(hits & set(exact_ids(live, query)))
    return found / (10 * len(queries))


def test_index_builds_in_the_background_while_searches_and_updates_go_on(
    tmp_path: Path, data: tuple[list[Point], Vectors]
) -> None:
    points, queries = data
    store = EdgeStore(tmp_path, hnsw_threshold=THRESHOLD)
    store.create_collection(NAME, SPEC)
    store.upsert(NAME, points[:1_500])
    assert not store.is_indexing(NAME)

    store.upsert(NAME, points[1_500:2_200])  # passes the threshold
    assert store.is_indexing(NAME)
    live = {p.id: p for p in points[:2_200]}
    late, doomed = points[2_200:], [p.id for p in points[:30]]
    exact_searches = 0
    expected: dict[int, list[str]] = {}  # by query, until ``live`` changes
    while store.is_indexing(NAME):
        which = exact_searches % len(queries)
        hits = [h.id for h in store.search(NAME, queries[which], top_k=10)]
        if store.is_indexed(NAME):
            break  # this search may have met the new index: not an exact one
        if which not in expected:
            expected[which] = exact_ids(live, queries[which])
        assert hits == expected[which]
        exact_searches += 1
        if exact_searches == 2:
            store.upsert(NAME, late)
            live.update((p.id, p) for p in late)
            expected.clear()
        if exact_searches == 4:
            store.delete(NAME, doomed)
            for point_id in doomed:
                del live[point_id]
            expected.clear()
    assert exact_searches >= 5
    assert store.is_indexed(NAME)

    # The updates made during the build were replayed onto the indexed copy.
    assert store.count(NAME) == len(live) == 2_370
    assert all(store.search(NAME, p.vector, top_k=1)[0].id == p.id for p in late[:20])
    assert recall_at_10(store, live, queries) >= 0.95
    small = Filter(must=(MatchAny("doc_id", ("doc-3",)),))
    assert [h.id for h in store.search(NAME, queries[0], 10, small)] == exact_ids(
        live, queries[0], small
    )
    assert sorted(p.name for p in (tmp_path / NAME).glob("shard-*")) == ["shard-1"]
    store.close()

    reopened = EdgeStore(tmp_path, hnsw_threshold=THRESHOLD)
    assert reopened.is_indexed(NAME)
    assert recall_at_10(reopened, live, queries) >= 0.95
    reopened.close()


def test_optimize_waits_and_reports_a_failed_build(
    tmp_path: Path,
    data: tuple[list[Point], Vectors],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    points = data[0][:300]
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, SPEC)
    store.upsert(NAME, points)

    monkeypatch.setattr(edge_module, "_BUILD_SCRIPT", "raise SystemExit(3)")
    with (
        caplog.at_level(logging.WARNING, logger="search.stores.edge"),
        pytest.raises(SemsearchError, match="exited with 3"),
    ):
        store.optimize(NAME)
    assert "indexing collection docs failed" in caplog.text
    assert not store.is_indexed(NAME)
    assert store.count(NAME) == 300
    assert [p.name for p in (tmp_path / NAME).glob("shard-*")] == ["shard-0"]

    monkeypatch.undo()
    store.optimize(NAME)
    assert store.is_indexed(NAME)
    assert store.search(NAME, points[7].vector, top_k=1)[0].id == points[7].id
    store.close()


def test_close_stops_a_build_in_progress(
    tmp_path: Path, data: tuple[list[Point], Vectors]
) -> None:
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, SPEC)
    store.upsert(NAME, data[0][:500])
    store.optimize(NAME, wait=False)
    store.close()

    reopened = EdgeStore(tmp_path)
    assert reopened.count(NAME) == 500
    assert len(list((tmp_path / NAME).glob("shard-*"))) == 1
    reopened.close()
