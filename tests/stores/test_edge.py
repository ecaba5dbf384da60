"""EdgeStore on its own: persistence, the WAL lock, and its files on disk."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from search.errors import InvalidInputError, StoreLockedError
from search.stores import CollectionSpec, EdgeStore, FieldType, Filter, MatchAny

from .oracle import DIM, NAME, brute_force, random_points, spec


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_reopen_keeps_points_payloads_and_indexes(tmp_path: Path) -> None:
    points = {p.id: p for p in random_points(np.random.default_rng(0), 40, DIM)}
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, spec(DIM))
    store.upsert(NAME, list(points.values()))
    store.delete(NAME, list(points)[:5])
    for point_id in list(points)[:5]:
        del points[point_id]
    store.close()

    reopened = EdgeStore(tmp_path)
    query = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    hits = reopened.search(NAME, query, top_k=35)
    assert [h.id for h in hits] == [i for i, _ in brute_force(points, query, None)]
    assert all(h.payload == points[h.id].payload for h in hits)
    # Faceting needs the payload index, so this shows the indexes were kept.
    assert sum(reopened.facet(NAME, "file_type").values()) == 35
    reopened.close()


def test_upserts_survive_a_crash_without_close(tmp_path: Path) -> None:
    crashed = run_python(
        f"""
        import os
        import numpy as np
        from search.stores import CollectionSpec, EdgeStore, Point
        store = EdgeStore({str(tmp_path)!r})
        store.create_collection("docs", CollectionSpec(dimension=4))
        point = Point("6a2f41a0-0b7e-4b5c-9d5e-3f7c1a2b3c4d", np.ones(4), {{}})
        store.upsert("docs", [point])
        os._exit(0)  # no close, no flush at exit
        """
    )
    assert crashed.returncode == 0, crashed.stderr

    store = EdgeStore(tmp_path)
    assert store.count("docs") == 1
    store.close()


def test_a_second_process_gets_store_locked_error(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, spec(DIM))
    try:
        second = run_python(
            f"""
            from search.errors import StoreLockedError
            from search.stores import EdgeStore
            try:
                EdgeStore({str(tmp_path)!r}).count({NAME!r})
            except StoreLockedError as exc:
                print(exc)
                raise SystemExit(3)
            """
        )
    finally:
        store.close()

    assert second.returncode == 3, second.stderr
    assert "in use by another process" in second.stdout
    assert str(tmp_path / NAME) in second.stdout


def test_a_second_store_in_this_process_is_refused_too(tmp_path: Path) -> None:
    first = EdgeStore(tmp_path)
    first.create_collection(NAME, spec(DIM))
    second = EdgeStore(tmp_path)
    with pytest.raises(StoreLockedError, match="in use by another process"):
        second.count(NAME)
    with pytest.raises(StoreLockedError):
        second.delete_collection(NAME)
    assert first.count(NAME) == 0

    first.close()
    assert second.count(NAME) == 0  # the lock goes with the first store
    second.close()


def test_create_adds_new_indexes_and_refuses_a_changed_type(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, CollectionSpec(DIM, {"doc_id": FieldType.KEYWORD}))
    store.upsert(NAME, random_points(np.random.default_rng(2), 10, DIM))
    with pytest.raises(InvalidInputError, match="no payload index"):
        store.facet(NAME, "file_type")

    store.create_collection(NAME, spec(DIM))
    assert sum(store.facet(NAME, "file_type").values()) == 10
    with pytest.raises(InvalidInputError, match="changes its index type"):
        store.create_collection(
            NAME, CollectionSpec(DIM, {"doc_id": FieldType.INTEGER})
        )
    store.close()

    reopened = EdgeStore(tmp_path)
    assert sum(reopened.facet(NAME, "file_type").values()) == 10
    reopened.close()


def test_open_removes_an_unfinished_copy_and_create_an_unfinished_folder(
    tmp_path: Path,
) -> None:
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, spec(DIM))
    store.close()
    (tmp_path / NAME / "shard-1" / "segments").mkdir(parents=True)
    (tmp_path / "half" / "shard-0").mkdir(parents=True)  # no collection.json

    store = EdgeStore(tmp_path)
    assert store.count(NAME) == 0
    assert sorted(p.name for p in (tmp_path / NAME).iterdir()) == [
        "collection.json",
        "shard-0",
    ]
    assert not store.collection_exists("half")
    store.create_collection("half", spec(DIM))
    assert store.count("half") == 0
    store.close()


def test_delete_collection_removes_its_files(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, spec(DIM))
    store.delete_collection(NAME)
    assert not (tmp_path / NAME).exists()
    with pytest.raises(InvalidInputError, match="no collection"):
        store.search(NAME, np.ones(DIM, dtype=np.float32), top_k=1)
    store.close()


def test_closed_store_refuses_calls_on_collections_it_held(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    store.create_collection(NAME, spec(DIM))
    store.close()
    # A closed store reopens on demand: its collections are files, not state.
    assert store.count(NAME, Filter(must=(MatchAny("doc_id", ("x",)),))) == 0
    store.close()
