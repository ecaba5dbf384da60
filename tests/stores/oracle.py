"""Plain versions of what the stores compute, and random data to feed both.

The payload fields mirror what ingest writes: a keyword ``doc_id`` and
``file_type``, keyword arrays ``tags``, ``groups`` and ``path_prefixes``, and
an integer ``modified`` (seconds).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from search.stores import (
    CollectionSpec,
    Condition,
    FieldType,
    Filter,
    MatchAll,
    MatchAny,
    Point,
    Range,
)

# The collection most tests use, and its vector size.
NAME = "docs"
DIM = 16
KEYWORDS = ("doc_id", "file_type", "tags", "groups", "path_prefixes")
ARRAYS = ("tags", "groups", "path_prefixes")
FILE_TYPES = ("pdf", "md", "txt", "html", "docx")
TAGS = tuple(f"tag{i}" for i in range(8))
GROUPS = ("staff", "admins", "legal", "public")
MODIFIED = (1_600_000_000, 1_700_000_000)
INDEXES = dict.fromkeys(KEYWORDS, FieldType.KEYWORD) | {"modified": FieldType.INTEGER}


def spec(dimension: int) -> CollectionSpec:
    return CollectionSpec(dimension=dimension, indexes=INDEXES)


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> npt.NDArray[np.float32]:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    normed: npt.NDArray[np.float32] = vectors / np.linalg.norm(
        vectors, axis=1, keepdims=True
    )
    return normed


def random_payload(rng: np.random.Generator, docs: int = 40) -> dict[str, Any]:
    folders = ["a", "b", "c"][: rng.integers(0, 4)]
    prefixes = ["/" + "/".join(folders[:i]) for i in range(len(folders) + 1)]
    return {
        "doc_id": f"doc-{rng.integers(docs)}",
        "file_type": str(rng.choice(FILE_TYPES)),
        "tags": _pick(rng, TAGS, int(rng.integers(0, 4))),
        "groups": _pick(rng, GROUPS, int(rng.integers(0, 3))),
        "path_prefixes": prefixes,
        "modified": int(rng.integers(*MODIFIED)),
    }


def _pick(rng: np.random.Generator, values: Sequence[str], n: int) -> list[str]:
    return sorted(str(v) for v in rng.choice(values, size=n, replace=False))


def random_points(rng: np.random.Generator, n: int, dim: int) -> list[Point]:
    vectors = unit_vectors(rng, n, dim)
    return [
        Point(str(uuid.UUID(bytes=rng.bytes(16), version=4)), v, random_payload(rng))
        for v in vectors
    ]


def random_condition(rng: np.random.Generator) -> Condition:
    kind = rng.integers(3)
    if kind == 0:
        key = str(rng.choice(KEYWORDS))
        values = _vocabulary(key)
        return MatchAny(key, tuple(_pick(rng, values, int(rng.integers(1, 4)))))
    if kind == 1:
        key = str(rng.choice(ARRAYS))
        picked = _pick(rng, _vocabulary(key), int(rng.integers(1, 3)))
        return MatchAll(key, tuple(picked))
    low, high = sorted(int(x) for x in rng.integers(*MODIFIED, size=2))
    bounds = [(low, high), (low, None), (None, high)][rng.integers(3)]
    return Range("modified", *bounds)


def random_filter(rng: np.random.Generator) -> Filter:
    must = tuple(random_condition(rng) for _ in range(rng.integers(0, 3)))
    must_not = tuple(random_condition(rng) for _ in range(rng.integers(0, 2)))
    return Filter(must=must, must_not=must_not)


def _vocabulary(key: str) -> Sequence[str]:
    return {
        "doc_id": [f"doc-{i}" for i in range(40)],
        "file_type": FILE_TYPES,
        "tags": TAGS,
        "groups": GROUPS,
        "path_prefixes": ["/", "/a", "/a/b", "/a/b/c"],
    }[key]


def holds(payload: dict[str, Any], condition: Condition) -> bool:
    value = payload.get(condition.key)
    present = value if isinstance(value, list) else [] if value is None else [value]
    if isinstance(condition, MatchAny):
        return any(v in condition.values for v in present)
    if isinstance(condition, MatchAll):
        return all(v in present for v in condition.values)
    return any(
        isinstance(v, int)
        and (condition.gte is None or v >= condition.gte)
        and (condition.lte is None or v <= condition.lte)
        for v in present
    )


def matches(payload: dict[str, Any], filter: Filter | None) -> bool:
    if filter is None:
        return True
    return all(holds(payload, c) for c in filter.must) and not any(
        holds(payload, c) for c in filter.must_not
    )


def brute_force(
    points: dict[str, Point], query: npt.NDArray[np.float32], filter: Filter | None
) -> list[tuple[str, float]]:
    """Every matching point with its cosine score, best first (float64 maths)."""
    kept = [p for p in points.values() if matches(p.payload, filter)]
    if not kept:
        return []
    matrix = np.array([p.vector for p in kept], dtype=np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = matrix @ (query.astype(np.float64) / np.linalg.norm(query))
    order = np.argsort(-scores, kind="stable")
    return [(kept[i].id, float(scores[i])) for i in order]


def facet_counts(
    points: Iterable[Point], key: str, filter: Filter | None = None
) -> dict[str | int, int]:
    counts: Counter[str | int] = Counter()
    for point in points:
        if matches(point.payload, filter):
            value: Any = point.payload.get(key)
            counts.update(set(value) if isinstance(value, list) else [value])
    return dict(counts)
