"""Both stores: EdgeStore on a temporary folder, ServerStore on qdrant-client's
in-memory mode. ``store`` is empty and fresh for each test; ``loaded`` holds 60
random points, is shared by a module's tests and must not be changed by them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from search.stores import EdgeStore, Point, ServerStore, VectorStore

from .oracle import DIM, NAME, random_points, spec

KINDS = ["edge", "server"]


def open_store(kind: str, folder: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(folder / "store")
    return ServerStore(QdrantClient(":memory:"))


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened = open_store(request.param, tmp_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module", params=KINDS)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VectorStore, dict[str, Point]]]:
    opened = open_store(request.param, tmp_path_factory.mktemp("loaded"))
    points = random_points(np.random.default_rng(7), 60, DIM)
    opened.create_collection(NAME, spec(DIM))
    opened.upsert(NAME, points)
    yield opened, {p.id: p for p in points}
    opened.close()
