"""What every VectorStore does, checked on both stores against plain Python."""

from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import pytest

from search.errors import InvalidInputError
from search.stores import (
    CollectionSpec,
    Filter,
    MatchAll,
    MatchAny,
    Point,
    Range,
    VectorStore,
)

from .oracle import DIM, NAME, brute_force, facet_counts, random_points, spec

Loaded = tuple[VectorStore, dict[str, Point]]


@pytest.fixture
def points(store: VectorStore) -> dict[str, Point]:
    """60 random points, upserted into NAME of the fresh ``store``."""
    made = random_points(np.random.default_rng(7), 60, DIM)
    store.create_collection(NAME, spec(DIM))
    store.upsert(NAME, made)
    return {p.id: p for p in made}


def test_create_collection_is_idempotent(store: VectorStore) -> None:
    assert not store.collection_exists(NAME)
    store.create_collection(NAME, spec(DIM))
    store.create_collection(NAME, spec(DIM))
    assert store.collection_exists(NAME)
    assert store.count(NAME) == 0

    with pytest.raises(InvalidInputError, match="dimension"):
        store.create_collection(NAME, CollectionSpec(dimension=DIM + 1))


def test_delete_collection(store: VectorStore, points: dict[str, Point]) -> None:
    store.delete_collection(NAME)
    assert not store.collection_exists(NAME)
    store.delete_collection(NAME)  # absent: nothing happens

    store.create_collection(NAME, spec(DIM))
    assert store.count(NAME) == 0


def test_upsert_replaces_by_id(store: VectorStore, points: dict[str, Point]) -> None:
    assert store.count(NAME) == 60
    first = next(iter(points.values()))
    changed = replace(first, payload={**first.payload, "doc_id": "doc-new"})
    store.upsert(NAME, [changed])

    assert store.count(NAME) == 60
    hits = store.search(NAME, first.vector, top_k=1)
    assert hits[0].id == first.id
    assert hits[0].payload["doc_id"] == "doc-new"


def test_ids_are_canonical_uuids(store: VectorStore) -> None:
    store.create_collection(NAME, spec(DIM))
    point = random_points(np.random.default_rng(1), 1, DIM)[0]
    store.upsert(NAME, [replace(point, id=point.id.upper())])
    assert store.search(NAME, point.vector, top_k=1)[0].id == point.id

    with pytest.raises(InvalidInputError, match="UUID"):
        store.upsert(NAME, [replace(point, id="chunk-1")])


def test_delete_by_ids(store: VectorStore, points: dict[str, Point]) -> None:
    doomed = list(points)[:10]
    store.delete(NAME, [*doomed, str(uuid.uuid4())])  # an absent id is ignored

    assert store.count(NAME) == 50
    page, _ = store.scroll(NAME, limit=100)
    assert not {p.id for p in page} & set(doomed)


def test_delete_by_filter(store: VectorStore, points: dict[str, Point]) -> None:
    doomed = Filter(must=(MatchAny("file_type", ("pdf", "md")),))
    expected = sum(
        1 for p in points.values() if p.payload["file_type"] not in {"pdf", "md"}
    )
    store.delete_by_filter(NAME, doomed)

    assert store.count(NAME) == expected
    assert store.count(NAME, doomed) == 0
    with pytest.raises(InvalidInputError, match="every point"):
        store.delete_by_filter(NAME, Filter())


FILTERS = [
    Filter(must=(MatchAny("doc_id", ("doc-1", "doc-2", "doc-3")),)),
    Filter(must=(MatchAny("tags", ("tag0", "tag5")),)),
    Filter(must=(MatchAll("tags", ("tag1", "tag2")),)),
    Filter(must=(MatchAll("path_prefixes", ("/", "/a/b")),)),
    Filter(must=(Range("modified", gte=1_650_000_000),)),
    Filter(must=(Range("modified", lte=1_620_000_000),)),
    Filter(must=(Range("modified", 1_610_000_000, 1_690_000_000),)),
    Filter(must_not=(MatchAny("groups", ("legal",)),)),
    Filter(must_not=(MatchAll("tags", ("tag1", "tag2")),)),
    Filter(must_not=(Range("modified", gte=1_650_000_000),)),
    Filter(
        must=(
            MatchAny("file_type", ("pdf", "txt", "md")),
            MatchAll("groups", ("staff",)),
        ),
        must_not=(MatchAny("tags", ("tag3",)),),
    ),
    Filter(must=(MatchAny("tags", ()),)),  # no value can match
    Filter(must=(MatchAll("tags", ()),)),  # vacuously true
]


@pytest.mark.parametrize("filter", FILTERS)
def test_filters_count_and_search(loaded: Loaded, filter: Filter) -> None:
    store, points = loaded
    query = next(iter(points.values())).vector
    expected = brute_force(points, query, filter)
    assert store.count(NAME, filter) == len(expected)

    hits = store.search(NAME, query, top_k=100, filter=filter)
    assert [h.id for h in hits] == [i for i, _ in expected]
    for hit, (_, score) in zip(hits, expected, strict=True):
        assert hit.score == pytest.approx(score, abs=1e-5)
        assert hit.payload == points[hit.id].payload


def test_search_order_top_k_and_offset(loaded: Loaded) -> None:
    store, points = loaded
    query = np.random.default_rng(3).standard_normal(DIM).astype(np.float32)
    expected = [i for i, _ in brute_force(points, query, None)]

    top = store.search(NAME, query, top_k=10)
    assert [h.id for h in top] == expected[:10]
    assert [h.score for h in top] == sorted((h.score for h in top), reverse=True)
    page = store.search(NAME, query, top_k=4, offset=3)
    assert [h.id for h in page] == expected[3:7]
    assert store.search(NAME, query, top_k=5, offset=58)[0].id == expected[58]
    assert store.search(NAME, query, top_k=5, offset=60) == []


@pytest.mark.parametrize("key", ["tags", "file_type", "path_prefixes"])
def test_facet_counts_array_elements(loaded: Loaded, key: str) -> None:
    store, points = loaded
    assert store.facet(NAME, key) == facet_counts(points.values(), key)
    staff = Filter(must=(MatchAny("groups", ("staff",)),))
    assert store.facet(NAME, key, staff) == facet_counts(points.values(), key, staff)


def test_facet_limit_keeps_the_most_frequent(loaded: Loaded) -> None:
    store, points = loaded
    counts = facet_counts(points.values(), "path_prefixes")
    top = store.facet(NAME, "path_prefixes", limit=1)
    assert top == {"/": counts["/"]}


@pytest.mark.parametrize("limit", [1, 7, 60, 256])
def test_scroll_pages_cover_every_point_in_id_order(loaded: Loaded, limit: int) -> None:
    store, points = loaded
    seen: list[str] = []
    offset: str | None = None
    while True:
        page, offset = store.scroll(NAME, limit=limit, offset=offset)
        assert len(page) <= limit
        assert all(p.score == 0.0 and p.payload == points[p.id].payload for p in page)
        seen.extend(p.id for p in page)
        if offset is None:
            break
    assert seen == sorted(points)


def test_scroll_with_filter(loaded: Loaded) -> None:
    store, points = loaded
    filter = Filter(must=(MatchAny("tags", ("tag2",)),))
    page, offset = store.scroll(NAME, filter=filter, limit=100)
    assert offset is None
    assert [p.id for p in page] == sorted(
        p.id for p in points.values() if "tag2" in p.payload["tags"]
    )


def test_refused_inputs(loaded: Loaded) -> None:
    store, _ = loaded
    vector = np.ones(DIM, dtype=np.float32)
    with pytest.raises(InvalidInputError, match="vector of 16"):
        store.search(NAME, np.ones(DIM + 1, dtype=np.float32), top_k=3)
    with pytest.raises(InvalidInputError, match="zeros"):
        store.search(NAME, np.zeros(DIM, dtype=np.float32), top_k=3)
    with pytest.raises(InvalidInputError, match="top_k"):
        store.search(NAME, vector, top_k=0)
    with pytest.raises(InvalidInputError, match="strings or all integers"):
        store.count(NAME, Filter(must=(MatchAny("doc_id", ("doc-1", 2)),)))
    with pytest.raises(InvalidInputError, match="no collection"):
        store.count("missing")
    with pytest.raises(InvalidInputError, match="collection name"):
        store.create_collection("../escape", spec(DIM))
