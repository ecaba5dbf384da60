"""The embedded vector store: one qdrant-edge shard per collection, in process.

Layout under ``root``::

    <name>/collection.json   the spec, and which shard folder is live
    <name>/shard-<n>/        the EdgeShard: segments, write-ahead log, config

Search is exact until ``hnsw_threshold`` points of a collection lie outside any
HNSW index; then an index is built while searches go on. Not by ``optimize()``
on a thread: in qdrant-edge-py 0.9.0 every EdgeShard call holds the GIL from
start to end (``optimize()`` of 5,000 384-d points ran 2.9 s in which no other
Python thread ran once). Instead a child process indexes a copy of the shard,
``shard-<n+1>``, while this one serves searches and updates from the live
shard and journals the updates. The journal is replayed onto the indexed copy,
which then goes live by rewriting ``collection.json`` (an atomic rename). A
crash at any step leaves the old shard live and complete; the next open
removes the unfinished copy.

Limits:

- One process per collection: the write-ahead log is locked, and a second
  opener gets :class:`~search.errors.StoreLockedError`.
- Engine calls of one collection run one at a time (they hold the GIL anyway).
- Each ``upsert`` and ``delete`` call ends with a flush (measured 6-400 ms,
  holding the GIL), so pass thousands of points per call, not one.
- A build needs a second copy of the shard on disk, a child with about 1.7 GB
  per 200k 384-d points, and minutes at that size (notes/vector-stores.md).
  Updates made during a build are also kept in memory until it ends.
- Range bounds are compared as float64: exact for integers up to 2**53.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
import qdrant_edge as qe

from search.errors import InvalidInputError, SemsearchError, StoreLockedError
from search.stores import (
    check_fusion,
    check_name,
    check_page,
    match_values,
    point_id,
    sparse_values,
    vector_values,
)
from search.stores.base import (
    SPARSE_VECTOR,
    CollectionSpec,
    Condition,
    FieldType,
    Filter,
    Fusion,
    MatchAll,
    MatchAny,
    Point,
    ScoredPoint,
    SparseVector,
)

if TYPE_CHECKING:
    from qdrant_edge import ConditionType

logger = logging.getLogger(__name__)

T = TypeVar("T")

SPEC_FILE = "collection.json"
# Points per engine update call: bounds one copy into Rust (~2 MB at 384-d).
UPDATE_BATCH = 1024
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
# Candidates kept per HNSW search. bench/query.py, 200k real 384-d points,
# ef sweeps on two builds: recall@10 0.986-0.990 at 128, 0.994-0.996 at 192,
# 0.997-1.000 at 256 unfiltered (p50 1.2-1.6, 1.8-2.0, 2.2-2.3 ms); a filter
# matching ~7% of the points reached 0.97 at 128, 0.98 at 256, 0.99 at 512.
# ef_construct 200 instead of 100 built 1.7x slower for no better recall.
HNSW_EF = 192
# HNSW walks int8 copies of the vectors (a quarter of the memory traffic) and
# rescores the best 2 x top_k with the float32 originals, so scores stay
# exact. bench/query.py at 200k, ef 192: recall@10 0.994 either way, search
# p50 / p95 0.95 / 1.23 ms against 1.37 / 1.76 ms, HNSW built in 94 s
# against 149 s.
QUANTIZATION = qe.ScalarQuantizationConfig(
    qe.ScalarType.Int8, quantile=0.99, always_ram=True
)
QUANTIZED_SEARCH = qe.QuantizationSearchParams(rescore=True, oversampling=2.0)
HNSW_EF_FILTERED = 512
_SCHEMAS = {
    FieldType.KEYWORD: qe.PayloadSchemaType.Keyword,
    FieldType.INTEGER: qe.PayloadSchemaType.Integer,
}
# Run by the child process; at a lower priority, so that searches keep the CPU.
_BUILD_SCRIPT = """\
import os
import sys
import qdrant_edge
os.nice(10)
shard = qdrant_edge.EdgeShard.load(sys.argv[1])
shard.optimize()
shard.flush()
shard.close()
"""


@dataclass(eq=False)
class _Collection:
    """One open collection: its live shard, and the state of an index build."""

    name: str
    folder: Path
    spec: CollectionSpec
    generation: int
    shard: qe.EdgeShard
    # Held around every shard call, so that a swap never closes a shard in use.
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held by writers, the snapshot copy and the swap, so that none interleave.
    # Taken before ``lock``, never after.
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    journal: list[qe.UpdateOperation] | None = None
    builder: threading.Thread | None = None
    child: subprocess.Popen[bytes] | None = None
    build_error: str | None = None
    closed: bool = False

    def shard_dir(self, offset: int = 0) -> Path:
        return self.folder / f"shard-{self.generation + offset}"

    def read(self, call: Callable[[qe.EdgeShard], T]) -> T:
        with self.lock:
            if self.closed:
                raise InvalidInputError(f"collection {self.name} was closed")
            return call(self.shard)

    def apply(self, ops: Sequence[qe.UpdateOperation]) -> None:
        if not ops:
            return
        with self.write_lock, self.lock:
            if self.closed:
                raise InvalidInputError(f"collection {self.name} was closed")
            for op in ops:
                self.shard.update(op)
            # update() leaves the WAL in the page cache; flush() syncs it to disk.
            self.shard.flush()
            if self.journal is not None:
                self.journal.extend(ops)

    def close(self) -> None:
        with self.write_lock:
            self.closed = True
            if self.child is not None and self.child.poll() is None:
                self.child.kill()
        if self.builder is not None:
            self.builder.join()
        with self.lock:
            self.shard.close()


class EdgeStore:
    """Collections as qdrant-edge shards under ``root``, searched in this process.

    ``hnsw_threshold`` (points, default 20,000): once that many points of a
    collection lie outside any HNSW index, an upsert starts building one in a
    child process (see the module docstring). Until then search is exact, about
    3 ms per 20k 384-d points. It also sets, when a collection is created, the
    size under which an indexed segment or a filter's matches are still scored
    exactly: half of it (bench/query.py: 6k matches of 200k points took 0.9
    ms scored exactly, 2.8 ms through the filtered HNSW graph).
    """

    def __init__(
        self,
        root: Path,
        hnsw_threshold: int = 20_000,
        hnsw_ef: int = HNSW_EF,
        hnsw_ef_filtered: int = HNSW_EF_FILTERED,
    ) -> None:
        if hnsw_threshold < 1:
            raise InvalidInputError("hnsw_threshold must be at least 1 point")
        if min(hnsw_ef, hnsw_ef_filtered) < 1:
            raise InvalidInputError("hnsw_ef must be at least 1")
        self._root = Path(root)
        self._hnsw_threshold = hnsw_threshold
        #: Candidates an HNSW search keeps, without and with a filter.
        self.hnsw_ef = hnsw_ef
        self.hnsw_ef_filtered = hnsw_ef_filtered
        self._collections: dict[str, _Collection] = {}
        self._registry = threading.RLock()

    def create_collection(self, name: str, spec: CollectionSpec) -> None:
        """Create ``name``; for an existing one, add the payload indexes it lacks.

        Raises InvalidInputError if it exists with another dimension, or if the
        spec gives an indexed field another type.
        """
        folder = self._root / check_name(name)
        if spec.dimension < 1:
            raise InvalidInputError("a collection needs a dimension of at least 1")
        with self._registry:
            if (folder / SPEC_FILE).exists():
                self._extend(self._get(name), spec)
                return

            # A folder without a spec file is a create that did not finish.
            shutil.rmtree(folder, ignore_errors=True)
            config = _config(spec.dimension, self._hnsw_threshold, spec.sparse)
            shard = _open_shard(folder / "shard-0", config)
            for key, field_type in spec.indexes.items():
                op = qe.UpdateOperation.create_field_index(key, _SCHEMAS[field_type])
                shard.update(op)
            shard.flush()
            _write_spec(folder, spec, 0)
            self._collections[name] = _Collection(name, folder, spec, 0, shard)
        logger.info("created collection %s (%d dimensions)", name, spec.dimension)

    def collection_exists(self, name: str) -> bool:
        return (self._root / check_name(name) / SPEC_FILE).exists()

    def delete_collection(self, name: str) -> None:
        """Close and remove ``name`` with its files; nothing happens if it is absent."""
        with self._registry:
            if not self.collection_exists(name):
                return
            # Opening takes the WAL lock, so a collection in use is never removed.
            coll = self._get(name)
            del self._collections[name]
            coll.close()
            shutil.rmtree(coll.folder)
        logger.info("deleted collection %s", name)

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id, synced to disk when this returns.

        May start an index build (module docstring), without waiting for it.
        """
        coll = self._get(name)
        edge_points = [_edge_point(p, coll.spec) for p in points]
        coll.apply(
            [qe.UpdateOperation.upsert_points(batch) for batch in _batches(edge_points)]
        )
        if coll.build_error is None:  # after a failure, only optimize() retries
            info = coll.read(lambda shard: shard.info())
            if info.points_count - info.indexed_vectors_count >= self._hnsw_threshold:
                _start_build(coll)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete the points with these ids (absent ids are ignored), synced."""
        coll = self._get(name)
        point_ids: list[qe.PointId] = [point_id(i) for i in ids]
        coll.apply([qe.UpdateOperation.delete_points(b) for b in _batches(point_ids)])

    def delete_by_filter(self, name: str, filter: Filter) -> None:
        """Delete the points that match ``filter``; an empty filter is refused."""
        edge_filter = edge_filter_of(filter)
        if edge_filter is None:
            raise InvalidInputError("an empty filter would delete every point")
        op = qe.UpdateOperation.delete_points_by_filter(edge_filter)
        self._get(name).apply([op])

    def search(
        self,
        name: str,
        vector: npt.NDArray[np.float32],
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
    ) -> list[ScoredPoint]:
        """The ``top_k`` points closest to ``vector`` after ``offset``, best first."""
        check_page(top_k, offset)
        coll = self._get(name)
        edge_filter = edge_filter_of(filter)
        request = qe.QueryRequest(
            limit=top_k,
            offset=offset,
            query=qe.Query.Nearest(vector_values(vector, coll.spec.dimension)),
            filter=edge_filter,
            with_payload=True,
            params=self._search_params(edge_filter, top_k + offset),
        )
        return _scored(coll.read(lambda shard: shard.query(request)))

    def search_sparse(
        self,
        name: str,
        vector: SparseVector,
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
    ) -> list[ScoredPoint]:
        """The ``top_k`` points of highest IDF-weighted dot product with ``vector``."""
        check_page(top_k, offset)
        coll = self._get_sparse(name)
        request = qe.QueryRequest(
            limit=top_k,
            offset=offset,
            query=_sparse_query(vector),
            filter=edge_filter_of(filter),
            with_payload=True,
        )
        return _scored(coll.read(lambda shard: shard.query(request)))

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
        """One query: dense and sparse candidates, filtered, fused (RRF or DBSF)."""
        check_page(top_k, offset)
        check_fusion(prefetch, rrf_k)
        coll = self._get_sparse(name)
        edge_filter = edge_filter_of(filter)
        prefetches = [
            qe.Prefetch(
                limit=prefetch,
                query=qe.Query.Nearest(vector_values(dense, coll.spec.dimension)),
                filter=edge_filter,
                params=self._search_params(edge_filter, prefetch),
            ),
            qe.Prefetch(
                limit=prefetch, query=_sparse_query(sparse), filter=edge_filter
            ),
        ]
        request = qe.QueryRequest(
            limit=top_k,
            offset=offset,
            prefetches=prefetches,
            query=_fusion(fusion, rrf_k),
            with_payload=True,
        )
        return _scored(coll.read(lambda shard: shard.query(request)))

    def has_sparse(self, name: str) -> bool:
        return self._get(name).spec.sparse

    def count(self, name: str, filter: Filter | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=edge_filter_of(filter))
        return self._get(name).read(lambda shard: shard.count(request))

    def facet(
        self, name: str, key: str, filter: Filter | None = None, limit: int = 100
    ) -> dict[str | int, int]:
        """How many points hold each value of ``key`` (array elements counted).

        The ``limit`` most frequent values; ``key`` needs a payload index.
        """
        request = qe.FacetRequest(key, limit, exact=True, filter=edge_filter_of(filter))
        try:
            response = self._get(name).read(lambda shard: shard.facet(request))
        except Exception as exc:
            if "No appropriate index" not in str(exc):
                raise
            raise InvalidInputError(f"{name} has no payload index on {key!r}") from exc
        # The engine also lists indexed values that no matching point holds.
        return {hit.value: hit.count for hit in response.hits if hit.count > 0}

    def scroll(
        self,
        name: str,
        filter: Filter | None = None,
        limit: int = 256,
        offset: str | None = None,
    ) -> tuple[list[ScoredPoint], str | None]:
        """A page of points (score 0) ordered by id, and the next page's offset."""
        if limit < 1:
            raise InvalidInputError("a scroll page holds at least 1 point")
        request = qe.ScrollRequest(
            offset=None if offset is None else point_id(offset),
            limit=limit,
            filter=edge_filter_of(filter),
            with_payload=True,
            with_vector=False,
        )
        records, next_id = self._get(name).read(lambda shard: shard.scroll(request))
        page = [ScoredPoint(str(r.id), 0.0, r.payload or {}) for r in records]
        return page, None if next_id is None else str(next_id)

    def optimize(self, name: str, wait: bool = True) -> None:
        """Build the HNSW index of ``name`` now, whatever its size.

        Searches and updates from other threads go on meanwhile. With ``wait``
        (the default), returns once the index is live and covers at least the
        points present when the build started, or raises SemsearchError if the
        build failed; a build already running is waited for, not repeated.
        """
        coll = self._get(name)
        builder = _start_build(coll, retry=True)
        if wait:
            builder.join()
            if coll.build_error is not None:
                raise SemsearchError(f"indexing {name} failed: {coll.build_error}")

    def is_indexed(self, name: str) -> bool:
        """Whether ``name`` has an HNSW index (later points may lie outside it)."""
        info = self._get(name).read(lambda shard: shard.info())
        return info.indexed_vectors_count > 0

    def is_indexing(self, name: str) -> bool:
        """Whether an index build of ``name`` is running."""
        builder = self._get(name).builder
        return builder is not None and builder.is_alive()

    def close(self) -> None:
        """Stop index builds and close every open collection."""
        with self._registry:
            collections = list(self._collections.values())
            self._collections.clear()
        for coll in collections:
            coll.close()

    def _search_params(
        self, edge_filter: qe.Filter | None, depth: int
    ) -> qe.SearchParams:
        """HNSW candidates for ``depth`` results (more if filtered), int8 rescored."""
        ef = self.hnsw_ef_filtered if edge_filter is not None else self.hnsw_ef
        return qe.SearchParams(hnsw_ef=max(ef, depth), quantization=QUANTIZED_SEARCH)

    def _get_sparse(self, name: str) -> _Collection:
        coll = self._get(name)
        if not coll.spec.sparse:
            raise InvalidInputError(
                f"collection {name} has no keyword index (it was made without one)"
            )
        return coll

    def _get(self, name: str) -> _Collection:
        with self._registry:
            coll = self._collections.get(name)
            if coll is None:
                coll = self._collections[name] = _open(self._root / check_name(name))
            return coll

    def _extend(self, coll: _Collection, spec: CollectionSpec) -> None:
        if spec.dimension != coll.spec.dimension:
            raise InvalidInputError(
                f"collection {coll.name} exists with dimension "
                f"{coll.spec.dimension}, not {spec.dimension}"
            )
        if spec.sparse and not coll.spec.sparse:
            raise InvalidInputError(
                f"collection {coll.name} exists without a sparse vector; "
                "a new collection is needed for keyword search"
            )
        if any(coll.spec.indexes.get(k, t) != t for k, t in spec.indexes.items()):
            raise InvalidInputError(f"{coll.name}: a field changes its index type")
        new = {k: t for k, t in spec.indexes.items() if k not in coll.spec.indexes}
        if new:
            ops = [
                qe.UpdateOperation.create_field_index(k, _SCHEMAS[t])
                for k, t in new.items()
            ]
            coll.apply(ops)
            with coll.write_lock:
                coll.spec = CollectionSpec(
                    spec.dimension, {**coll.spec.indexes, **new}, coll.spec.sparse
                )
                _write_spec(coll.folder, coll.spec, coll.generation)


def _open(folder: Path) -> _Collection:
    try:
        data = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"no collection named {folder.name!r}") from None
    indexes = {key: FieldType(value) for key, value in data["indexes"].items()}
    coll = _Collection(
        folder.name,
        folder,
        CollectionSpec(data["dimension"], indexes, bool(data.get("sparse", False))),
        data["shard"],
        _open_shard(folder / f"shard-{data['shard']}"),
    )

    # The WAL lock is ours now, so other shard folders are leftovers.
    for path in folder.glob("shard-*"):
        if path != coll.shard_dir():
            shutil.rmtree(path, ignore_errors=True)
    logger.info("opened collection %s from %s", coll.name, folder)
    return coll


def _start_build(coll: _Collection, retry: bool = False) -> threading.Thread:
    with coll.write_lock:
        if coll.builder is None or not coll.builder.is_alive():
            if retry:
                coll.build_error = None
            coll.builder = threading.Thread(
                target=_build, args=(coll,), name=f"index-{coll.name}", daemon=True
            )
            coll.builder.start()
        return coll.builder


def _build(coll: _Collection) -> None:
    """Index a copy of the live shard in a child process, then make it live."""
    started = time.perf_counter()
    target = coll.shard_dir(1)
    try:
        with coll.write_lock:
            if coll.closed:
                return
            with coll.lock:
                coll.shard.flush()
                points = coll.shard.info().points_count
            # Writers wait for the copy; searches go on.
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(coll.shard_dir(), target)
            coll.journal = []
            child = coll.child = subprocess.Popen(
                [sys.executable, "-c", _BUILD_SCRIPT, str(target)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        logger.info(
            "indexing %s (%d points) in process %d", coll.name, points, child.pid
        )

        _, stderr = child.communicate()
        if child.returncode != 0:
            lines = stderr.decode(errors="replace").strip().splitlines() or ["-"]
            raise SemsearchError(
                f"the index process exited with {child.returncode}: {lines[-1]}"
            )
        replayed = _swap(coll, target)
        seconds = time.perf_counter() - started
        logger.info(
            "indexed %s in %.1f s; %d updates replayed", coll.name, seconds, replayed
        )
    except Exception as exc:
        with coll.write_lock:
            coll.journal = coll.child = None
            if not coll.closed:
                coll.build_error = str(exc)
                logger.warning("indexing collection %s failed: %s", coll.name, exc)
        shutil.rmtree(target, ignore_errors=True)


def _swap(coll: _Collection, target: Path) -> int:
    """Replay the journal onto the indexed copy and make it the live shard."""
    with coll.write_lock:
        if coll.closed:
            raise SemsearchError("the collection was closed")
        journal = coll.journal or []
        shard = _open_shard(target)
        try:
            for op in journal:
                shard.update(op)
            shard.flush()
            _write_spec(coll.folder, coll.spec, coll.generation + 1)
        except BaseException:
            shard.close()
            raise

        old_dir = coll.shard_dir()
        with coll.lock:
            coll.shard.close()
            coll.shard = shard
            coll.generation += 1
        coll.journal = coll.child = None
    shutil.rmtree(old_dir, ignore_errors=True)
    return len(journal)


def _config(dimension: int, hnsw_threshold: int, sparse: bool) -> qe.EdgeConfig:
    # A segment, or a filter's matches, below this size is scored exactly.
    full_scan_kb = max(1, hnsw_threshold // 2 * dimension * 4 // 1024)
    hnsw = qe.HnswIndexConfig(HNSW_M, HNSW_EF_CONSTRUCT, full_scan_kb)
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine),
        sparse_vectors={
            SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)
        }
        if sparse
        else None,
        hnsw_config=hnsw,
        quantization_config=QUANTIZATION,
        # optimize() then indexes every segment; this store decides when to call it.
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1),
    )


def _open_shard(path: Path, create: qe.EdgeConfig | None = None) -> qe.EdgeShard:
    """Load the shard at ``path``, or create it with the ``create`` config."""
    try:
        if create is not None:
            return qe.EdgeShard.create(str(path), create)
        return qe.EdgeShard.load(str(path))
    except Exception as exc:
        # A bare Exception; "Can't init WAL: Kind(WouldBlock)" means another
        # EdgeShard, in this process or another, holds the WAL's file lock.
        if "WouldBlock" not in str(exc):
            raise
        raise StoreLockedError(
            f"the vector store at {path.parent} is in use by another process; "
            "close that process (or its other store) and try again"
        ) from exc


def _write_spec(folder: Path, spec: CollectionSpec, generation: int) -> None:
    indexes = {key: field_type.value for key, field_type in spec.indexes.items()}
    data = {
        "dimension": spec.dimension,
        "indexes": indexes,
        "sparse": spec.sparse,
        "shard": generation,
    }
    temporary = folder / f"{SPEC_FILE}.tmp"
    with temporary.open("w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, folder / SPEC_FILE)

    # The rename is durable only once the folder itself is synced.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _batches(items: list[T]) -> list[list[T]]:
    return [items[i : i + UPDATE_BATCH] for i in range(0, len(items), UPDATE_BATCH)]


def edge_filter_of(filter: Filter | None) -> qe.Filter | None:
    """The qdrant-edge filter for ``filter``; None for no filter or an empty one."""
    if not filter:
        return None
    must: list[ConditionType] = []
    for condition in filter.must:
        must.extend(_conditions(condition))
    must_not: list[ConditionType] = []
    for condition in filter.must_not:
        parts = _conditions(condition)
        # must_not excludes a point meeting any entry; MatchAll fails only as a whole.
        must_not.append(parts[0] if len(parts) == 1 else qe.Filter(must=parts))
    return qe.Filter(must=must or None, must_not=must_not or None)


def _conditions(condition: Condition) -> list[ConditionType]:
    key = condition.key
    if isinstance(condition, MatchAny):
        return [qe.FieldCondition(key, match=qe.MatchAny(match_values(condition)))]
    if isinstance(condition, MatchAll):
        values = match_values(condition)
        return [qe.FieldCondition(key, match=qe.MatchValue(v)) for v in values]
    bounds = qe.RangeFloat(gte=condition.gte, lte=condition.lte)
    return [qe.FieldCondition(key, range=bounds)]


def _edge_point(point: Point, spec: CollectionSpec) -> qe.Point:
    dense = vector_values(point.vector, spec.dimension)
    if not spec.sparse:
        return qe.Point(point_id(point.id), dense, point.payload)
    vectors: dict[str, Any] = {"": dense}
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE_VECTOR] = qe.SparseVector(*sparse_values(point.sparse))
    return qe.Point(point_id(point.id), vectors, point.payload)


def _sparse_query(vector: SparseVector) -> qe.Query:
    return qe.Query.Nearest(
        qe.SparseVector(*sparse_values(vector)), using=SPARSE_VECTOR
    )


def _fusion(fusion: Fusion, rrf_k: int) -> Any:
    # The stubs type the Rrf and Dbsf classes apart from Fusion, the engine
    # takes them as its fusion queries.
    return qe.Fusion.Rrf(k=rrf_k) if fusion is Fusion.RRF else qe.Fusion.Dbsf()


def _scored(hits: list[Any]) -> list[ScoredPoint]:
    return [ScoredPoint(str(h.id), h.score, h.payload or {}) for h in hits]
