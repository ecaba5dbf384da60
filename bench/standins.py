"""Stand-ins for measuring and testing the job queue without Qdrant or a model.

Test and benchmark doubles, never for production. Worker processes on one
queue need one vector store that all of them write to; this machine has no
Qdrant server, and qdrant-client's local mode and the embedded engine are
each held by one process. :class:`FixedCostEncoder` does what ingest asks of
the encoder at a fixed cost per text; :class:`SqlPointStore` keeps points in
SQL tables (SQLite or PostgreSQL) that any number of processes share, for
thousands of points, not millions; :func:`run_worker` is a worker process
over the two. In an App: ``App(settings, store=SqlPointStore(url))`` with a
``QDRANT_URL`` set (the server code path), and
``app.__dict__["encoder"] = FixedCostEncoder(...)`` (a cached property).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from search.stores import check_name, match_values, point_id, vector_values
from search.stores.base import (
    CollectionSpec,
    Condition,
    Filter,
    MatchAll,
    MatchAny,
    Point,
    ScoredPoint,
)

FloatArray = npt.NDArray[np.float32]
_TOKEN = re.compile(r"\w+|[^\w\s]")


class FixedCostEncoder:
    """Encodes each text into a unit vector from its hash, in a fixed time.

    ``encode`` sleeps ``seconds_per_chunk`` per text (a single string counts
    one), so a job of n new chunks costs n times that, whatever the CPU.
    Tokens are words and single punctuation marks. The vectors are float32,
    L2-normalized, and the same for the same text in every process.
    """

    model_name = "fixed-cost"
    identity = "fixed-cost"
    precision = "fp32"
    max_seq_length = 256
    special_tokens = 2
    bulk_batch_size = 32

    def __init__(self, seconds_per_chunk: float = 0.0, dimension: int = 32) -> None:
        self.seconds_per_chunk = seconds_per_chunk
        self.dimension = dimension

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]

    def encode(self, texts: str | Sequence[str], *_: Any, **__: Any) -> FloatArray:
        """Shape (n, dimension), or (dimension,) for one string; options ignored."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        if batch and self.seconds_per_chunk > 0:
            time.sleep(self.seconds_per_chunk * len(batch))
        vectors = np.empty((len(batch), self.dimension), dtype=np.float32)
        for row, text in enumerate(batch):
            seed = hashlib.sha256(text.encode("utf-8")).digest()[:8]
            rng = np.random.default_rng(int.from_bytes(seed, "little"))
            vector = rng.standard_normal(self.dimension).astype(np.float32)
            vectors[row] = vector / np.linalg.norm(vector)
        return vectors[0] if isinstance(texts, str) else vectors


_metadata = sa.MetaData()
_collections = sa.Table(
    "standin_collections",
    _metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("dimension", sa.Integer, nullable=False),
    sa.Column("sparse", sa.Boolean, nullable=False),
)
_points = sa.Table(
    "standin_points",
    _metadata,
    sa.Column("collection", sa.String(128), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("doc_id", sa.String(64), index=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)
_BATCH = 500
_NO_SEARCH = (
    "SqlPointStore stands in for ingest and check: it neither searches nor facets"
)


class SqlPointStore:
    """A vector store in two SQL tables (``standin_*``) that processes share.

    What ingest and ``check`` use: collections, upsert (replacing points by
    id, ``INSERT ... ON CONFLICT``, one commit a call), delete by id or
    filter, count and scroll. Filters are evaluated in Python over the
    payloads, except a ``MatchAny`` on ``doc_id``, a column. The searches and
    ``facet`` raise NotImplementedError; sparse vectors are dropped. Writes
    that meet a deadlock or a locked SQLite file are tried again.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        sqlite_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(url, connect_args=sqlite_args)
        try:
            _metadata.create_all(self.engine)
        except sa.exc.DBAPIError:  # another process created the tables meanwhile
            _metadata.create_all(self.engine)

    def create_collection(self, name: str, spec: CollectionSpec) -> None:
        """Create ``name``; an existing one is kept (its dimension must agree)."""
        row = {"name": check_name(name), "dimension": spec.dimension}
        row["sparse"] = spec.sparse
        self._write(self._insert(_collections).on_conflict_do_nothing(), [row])
        if self._dimension(name) != spec.dimension:
            raise ValueError(f"collection {name} exists with another dimension")

    def collection_exists(self, name: str) -> bool:
        return self._spec(name)[0] > 0

    def delete_collection(self, name: str) -> None:
        self._write(sa.delete(_points).where(_points.c.collection == name))
        self._write(sa.delete(_collections).where(_collections.c.name == name))

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id, in id order (so writers never deadlock)."""
        dimension = self._dimension(name)
        unique = {point_id(p.id): p for p in points}  # one row per id, the last
        rows = [
            {
                "collection": name,
                "id": id_,
                "doc_id": p.payload.get("doc_id"),
                "vector": np.array(
                    vector_values(p.vector, dimension), np.float32
                ).tobytes(),
                "payload": p.payload,
            }
            for id_, p in sorted(unique.items())
        ]
        insert = self._insert(_points)
        new = {key: insert.excluded[key] for key in ("doc_id", "vector", "payload")}
        upsert = insert.on_conflict_do_update(
            index_elements=["collection", "id"], set_=new
        )
        if rows:
            self._write(upsert, rows)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        wanted = sorted({point_id(i) for i in ids})
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            where = (_points.c.collection == name) & _points.c.id.in_(batch)
            self._write(sa.delete(_points).where(where))

    def delete_by_filter(self, name: str, filter: Filter) -> None:
        if not filter:
            raise ValueError("an empty filter would delete every point")
        self.delete(name, [i for i, _, _ in self._matching(name, filter)])

    def search(self, *args: Any, **kwargs: Any) -> list[ScoredPoint]:
        raise NotImplementedError(_NO_SEARCH)

    def search_sparse(self, *args: Any, **kwargs: Any) -> list[ScoredPoint]:
        raise NotImplementedError(_NO_SEARCH)

    def search_hybrid(self, *args: Any, **kwargs: Any) -> list[ScoredPoint]:
        raise NotImplementedError(_NO_SEARCH)

    def has_sparse(self, name: str) -> bool:
        """Whether ``name`` was made ``sparse`` (its sparse vectors are dropped)."""
        return bool(self._spec(name)[1])

    def count(self, name: str, filter: Filter | None = None) -> int:
        if filter:
            return sum(1 for _ in self._matching(name, filter))
        query = sa.select(sa.func.count()).where(_points.c.collection == name)
        with self.engine.connect() as db:
            return int(db.scalar(query) or 0)

    def facet(self, *args: Any, **kwargs: Any) -> dict[str | int, int]:
        raise NotImplementedError(_NO_SEARCH)

    def scroll(
        self,
        name: str,
        filter: Filter | None = None,
        limit: int = 256,
        offset: str | None = None,
    ) -> tuple[list[ScoredPoint], str | None]:
        """Points ordered by id from ``offset`` on; the next page's first id."""
        start = None if offset is None else point_id(offset)
        page: list[ScoredPoint] = []
        for id_, payload, _ in self._matching(name, filter, start=start):
            if len(page) == limit:
                return page, id_
            page.append(ScoredPoint(id_, 0.0, payload))
        return page, None

    def close(self) -> None:
        self.engine.dispose()

    def _matching(
        self,
        name: str,
        filter: Filter | None,
        vectors: bool = False,
        start: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any], bytes]]:
        """(id, payload, vector or b"") of the points ``filter`` keeps, by id."""
        columns = [_points.c.id, _points.c.payload]
        query = sa.select(*columns, *([_points.c.vector] if vectors else []))
        query = query.where(_points.c.collection == name).order_by(_points.c.id)
        if start is not None:
            query = query.where(_points.c.id >= start)
        for c in filter.must if filter else ():
            if c.key == "doc_id" and isinstance(c, MatchAny):
                query = query.where(_points.c.doc_id.in_([str(v) for v in c.values]))
        with self.engine.connect() as db:
            rows = db.execution_options(yield_per=_BATCH).execute(query)
            for row in rows:
                if filter is None or _keeps(filter, row[1]):
                    yield row[0], row[1], row[2] if vectors else b""

    def _spec(self, name: str) -> tuple[int, bool]:
        """The collection's dimension and sparse flag; (0, False) if absent."""
        table = _collections.c
        query = sa.select(table.dimension, table.sparse).where(table.name == name)
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return (0, False) if row is None else (int(row[0]), bool(row[1]))

    def _dimension(self, name: str) -> int:
        if dimension := self._spec(name)[0]:
            return dimension
        raise ValueError(f"no collection {name}")

    def _insert(self, table: sa.Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _write(self, statement: Any, rows: Sequence[Any] | None = None) -> None:
        """One commit of ``statement`` (over ``rows`` in batches), tried again
        after a deadlock or a busy SQLite file."""
        for attempt in range(8):
            try:
                with self.engine.begin() as db:
                    if rows is None:
                        db.execute(statement)
                    else:
                        for start in range(0, len(rows), _BATCH):
                            db.execute(statement, list(rows[start : start + _BATCH]))
                return
            except sa.exc.OperationalError as exc:
                busy = "database is locked" in str(exc.orig)
                deadlock = getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")
                if attempt == 7 or not (busy or deadlock):
                    raise
                time.sleep(0.05 * (attempt + 1))


def _keeps(filter: Filter, payload: Mapping[str, Any]) -> bool:
    return all(_meets(c, payload) for c in filter.must) and not any(
        _meets(c, payload) for c in filter.must_not
    )


def _meets(condition: Condition, payload: Mapping[str, Any]) -> bool:
    value = payload.get(condition.key)
    held = value if isinstance(value, list) else [] if value is None else [value]
    if isinstance(condition, MatchAny):
        return any(v in held for v in match_values(condition))
    if isinstance(condition, MatchAll):
        return all(v in held for v in match_values(condition))
    low = -np.inf if condition.gte is None else condition.gte
    high = np.inf if condition.lte is None else condition.lte
    return any(low <= v <= high for v in held if isinstance(v, int | float))


def run_worker(
    settings: Mapping[str, Any],
    store_url: str,
    worker: str,
    seconds_per_chunk: float,
    events: str | None = None,
    env: Mapping[str, str] | None = None,
    poll_s: float = 0.1,
    start: threading.Barrier | None = None,
) -> int:
    """A worker process: ``run_queued`` as ``worker`` until no job is left to run.

    ``settings`` are Settings' keyword arguments (with ``database_url`` and a
    ``qdrant_url``); ``env`` is set first (test hooks). With ``events``, a
    JSON line with ``time.monotonic()`` is appended there at each claim, end
    of a run and crash point passed: ``claim`` and ``run_job`` of ingest.jobs
    and the ``crash_point`` hook are wrapped in this process. With ``start``
    (a multiprocessing barrier of the workers), the first claims are made at
    once. Returns how many jobs ran.
    """
    os.environ.update(env or {})
    from ingest import jobs
    from search.app import App
    from search.catalog.models import Job, JobStatus
    from search.settings import Settings

    app = App(Settings(**settings), role="worker", store=SqlPointStore(store_url))
    app.__dict__["encoder"] = FixedCostEncoder(seconds_per_chunk)
    if events is not None:
        _record_events(events, jobs)
    stop = threading.Event()
    open_jobs = (JobStatus.QUEUED, JobStatus.RUNNING)
    unfinished = sa.select(sa.func.count()).where(Job.status.in_(open_jobs))

    def watch() -> None:
        while not stop.wait(poll_s):
            with app.engine.connect() as db:
                if not db.scalar(unfinished):
                    stop.set()

    with app.engine.connect():
        pass
    if start is not None:
        start.wait()
    watcher = threading.Thread(target=watch, name="queue-empty", daemon=True)
    watcher.start()
    try:
        return jobs.run_queued(app, stop, poll_s=poll_s, worker=worker)
    finally:
        stop.set()
        watcher.join()
        app.close()


def _record_events(path: str, jobs: Any) -> None:
    from ingest import consistency

    claim, run_job, crash_point = jobs.claim, jobs.run_job, consistency.crash_point
    current: dict[str, int | None] = {"job": None}

    def write(event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "t": time.monotonic(), **fields})
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def claimed(app: Any, worker: str | None = None) -> Any:
        job = claim(app, worker)
        if job is not None:
            write("claimed", job=job.id, worker=job.worker, attempts=job.attempts)
        return job

    def ran(app: Any, job: Any, *args: Any, **kwargs: Any) -> Any:
        current["job"] = job.id
        try:
            return run_job(app, job, *args, **kwargs)
        finally:
            write("ended", job=job.id, worker=job.worker)
            current["job"] = None

    def passed(name: str) -> None:
        write("crash_point", name=name, job=current["job"])
        crash_point(name)

    jobs.claim, jobs.run_job = claimed, ran
    # Each ingest module that imported the hook holds its own name for it.
    for module in [m for n, m in sys.modules.items() if n.startswith("ingest")]:
        if getattr(module, "crash_point", None) is crash_point:
            vars(module)["crash_point"] = passed
