"""Worker processes on one queue (issue 7): each job done once in effect, a
worker killed midway loses nothing, and no job is held by two workers at once.

Real processes (spawned) on a real PostgreSQL catalog share one vector store,
bench.standins' SqlPointStore (no Qdrant server here, and the embedded stores
are one process each), and encode with its FixedCostEncoder, whose fixed
cost per chunk keeps each job running long enough to overlap the others and
to outlast its lease. Each worker records its claims and the ends of its runs
(bench.standins.run_worker); the assertions read those records, the catalog
and the store, and compare the store with a plain ingest of the same folders.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_database, store_ids
from sqlalchemy import select
from sqlalchemy.orm import Session

# bench/ is not an installed package: pyproject's pytest ``pythonpath`` puts
# the repository root on sys.path, which spawned workers inherit.
from bench.standins import FixedCostEncoder, SqlPointStore, run_worker
from ingest import jobs
from ingest.consistency import check, point_id
from ingest.pipeline import IngestOptions, Ingestor
from search.app import App
from search.catalog.engine import create_catalog_engine, upgrade
from search.catalog.models import Chunk, Document, Job, JobStatus
from search.settings import Settings

pytestmark = pytest.mark.postgres

WORKERS = 3
LEASE_S = 2.0
# 12 chunks a folder: a job of one folder encodes for 2.4 s, of two for 4.8 s
# (longer than the lease, which the heartbeat must renew).
SECONDS_PER_CHUNK = 0.2
FOLDERS = 8
FILES = 4
NO_HOOKS = {"SEMSEARCH_TEST_PAUSE_S": "", "SEMSEARCH_TEST_CRASH_AT": ""}


@dataclass(frozen=True)
class Hold:
    """A worker's hold on a job: from its claim to the end of its run (or death)."""

    job: int
    worker: str
    start: float
    end: float


@pytest.fixture
def database() -> Iterator[str]:
    for url in postgres_database():
        engine = create_catalog_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def settings_of(url: str, data_dir: Path) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "model": "fixed-cost",
        "database_url": url,
        "qdrant_url": "http://sql-standin.invalid:6333",  # the server code path
        "chunk_tokens": 32,
        "chunk_overlap": 8,
        "job_lease_s": LEASE_S,
    }


def open_app(settings: dict[str, Any], store_url: str) -> App:
    app = App(Settings(**settings), store=SqlPointStore(store_url))
    app.__dict__["encoder"] = FixedCostEncoder()
    return app


def write_folders(root: Path) -> list[Path]:
    """FOLDERS folders of FILES files, about 3 chunks each, no text twice."""
    rng = random.Random(7)
    words = [f"w{n}" for n in range(500)]
    folders = []
    for k in range(FOLDERS):
        folder = root / f"set{k}"
        folder.mkdir(parents=True)
        for i in range(FILES):
            text = " ".join(rng.choices(words, k=72))
            (folder / f"note{i}.txt").write_text(f"Set {k} note {i}. {text}", "utf-8")
        folders.append(folder)
    return folders


def queue_jobs(app: App, folders: list[Path]) -> dict[int, list[Path]]:
    """Jobs in the order [a], [a, b], [b] per pair of folders: 12 for 8 folders.

    Neighbours in the queue share documents, so that workers claiming at
    once run jobs that ingest the same files at the same time.
    """
    plan: list[list[Path]] = []
    for a, b in zip(folders[::2], folders[1::2], strict=True):
        plan += [[a], [a, b], [b]]
    return {
        jobs.enqueue(app, jobs.ingest_params(paths, IngestOptions())): paths
        for paths in plan
    }


@dataclass
class Workers:
    processes: list[BaseProcess]
    # Kept until the workers have passed it: a barrier freed here is gone there.
    start: Any


def start_workers(
    settings: dict[str, Any], url: str, logs: list[Path], hooks: dict[str, str]
) -> Workers:
    """Workers w0, w1, ... logging to ``logs``; ``hooks`` is w0's environment.

    Their first claims are made at once (a barrier), so that claims race.
    """
    context = multiprocessing.get_context("spawn")
    workers = Workers([], context.Barrier(len(logs)))
    for n, log in enumerate(logs):
        env = NO_HOOKS | (hooks if n == 0 else {})
        args = (settings, url, f"w{n}", SECONDS_PER_CHUNK, str(log), env)
        child = context.Process(
            target=run_worker, args=args, kwargs={"start": workers.start}, name=f"w{n}"
        )
        child.start()
        workers.processes.append(child)
    return workers


def wait_for_event(events: Path, child: BaseProcess, event: dict[str, Any]) -> int:
    """The job of the first record in ``events`` that has every field of ``event``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for record in read_events(events):
            if event.items() <= record.items():
                return int(record["job"])
        assert child.is_alive(), f"{child.name} ended before {event}"
        time.sleep(0.01)
    raise AssertionError(f"{child.name} did not record {event} in 60 s")


def join_all(children: list[BaseProcess]) -> None:
    deadline = time.monotonic() + 120
    for child in children:
        child.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [c.name for c in children if c.is_alive()]
    for child in children:
        if child.is_alive():
            child.kill()
            child.join()
    assert not stuck, f"workers {stuck} still running after 120 s"
    assert [c.exitcode for c in children] == [0] * len(children)


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def holds(logs: list[Path], deaths: dict[str, float]) -> list[Hold]:
    """Every hold recorded; a worker that died holds its last job until then."""
    found = []
    for log in logs:
        open_claims: dict[int, dict[str, Any]] = {}
        for record in read_events(log):
            if record["event"] == "claimed":
                open_claims[record["job"]] = record
            elif record["event"] == "ended":
                claim = open_claims.pop(record["job"])
                found.append(
                    Hold(record["job"], claim["worker"], claim["t"], record["t"])
                )
        for job, claim in open_claims.items():
            assert claim["worker"] in deaths, f"job {job}: a run without an end"
            found.append(
                Hold(job, claim["worker"], claim["t"], deaths[claim["worker"]])
            )
    return found


def assert_one_holder_at_a_time(found: list[Hold]) -> None:
    by_job: dict[int, list[Hold]] = {}
    for hold in found:
        by_job.setdefault(hold.job, []).append(hold)
    for job, held in by_job.items():
        held.sort(key=lambda h: h.start)
        for before, after in itertools.pairwise(held):
            assert after.start >= before.end, (
                f"job {job} claimed by {after.worker} while {before.worker} held it"
            )


def assert_every_job_done_once(
    app: App, planned: dict[int, list[Path]], found: list[Hold]
) -> dict[int, Job]:
    with Session(app.engine) as session:
        rows = {job.id: job for job in session.scalars(select(Job))}
    assert set(rows) == set(planned)
    failed = {
        i: (j.status, [p.name for p in planned[i]], (j.error or "").split("\n")[0])
        for i, j in rows.items()
        if j.status != JobStatus.DONE
    }
    assert not failed, f"jobs not done: {failed}"
    claims = {i: sum(h.job == i for h in found) for i in rows}
    assert claims == {i: job.attempts for i, job in rows.items()}
    for job_id, job in rows.items():
        # Each run saw every file of its folders, and none failed.
        summary = job.summary or {}
        seen = sum(summary[k] for k in ("new", "changed", "unchanged"))
        assert (seen, summary["failed"]) == (FILES * len(planned[job_id]), 0)
        last = max((h for h in found if h.job == job_id), key=lambda h: h.start)
        assert job.worker == last.worker
    return rows


def assert_index_is_whole(app: App, oracle: App) -> None:
    """One active version per document, its rows and exactly their points,
    as a plain ingest of the same folders in one process leaves them."""
    with Session(app.engine) as session:
        documents = {d.id: d for d in session.scalars(select(Document))}
        rows = session.execute(select(Chunk.document_id, Chunk.version, Chunk.ordinal))
        chunks = sorted((d, v, o) for d, v, o in rows)
    assert len(documents) == FOLDERS * FILES
    assert {d.status for d in documents.values()} == {"indexed"}
    active = [
        (d.id, d.active_version, o)
        for d in documents.values()
        for o in range(d.chunk_count)
    ]
    assert chunks == sorted(active)  # no row of another version, none missing

    report = check(app)
    assert report.consistent, report.lines()
    expected = {point_id(*row) for row in chunks}
    stored = store_ids(app)
    assert stored == expected, (
        f"missing points {sorted(expected - stored)[:10]}, "
        f"extra points {sorted(stored - expected)[:10]}"
    )
    with Session(oracle.engine) as session:
        versions = {d.id: d.active_version for d in session.scalars(select(Document))}
    assert versions == {i: d.active_version for i, d in documents.items()}
    assert stored == store_ids(oracle)


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    return write_folders(tmp_path / "docs")


@pytest.fixture
def oracle(tmp_path: Path, folders: list[Path]) -> Iterator[App]:
    """What one process ingesting the same folders makes of them."""
    settings = settings_of("", tmp_path / "oracle") | {"database_url": None}
    app = open_app(settings, f"sqlite:///{tmp_path / 'oracle-points.sqlite3'}")
    Ingestor(app).run(folders)
    yield app
    app.close()


def test_workers_do_every_job_once_and_never_hold_one_together(
    database: str, tmp_path: Path, folders: list[Path], oracle: App
) -> None:
    settings = settings_of(database, tmp_path / "data")
    app = open_app(settings, database)
    try:
        planned = queue_jobs(app, folders)
        logs = [tmp_path / f"events-w{n}.jsonl" for n in range(WORKERS)]
        workers = start_workers(settings, database, logs, hooks={})
        join_all(workers.processes)

        found = holds(logs, deaths={})
        assert_one_holder_at_a_time(found)
        done = assert_every_job_done_once(app, planned, found)
        assert {job.attempts for job in done.values()} == {1}
        assert len({h.worker for h in found}) > 1  # the work was shared
        assert_index_is_whole(app, oracle)
    finally:
        app.close()


def test_a_worker_killed_midway_loses_nothing(
    database: str, tmp_path: Path, folders: list[Path], oracle: App
) -> None:
    """SIGKILL after a worker upserted a batch's points, before it activated
    them: its lease expires, another worker takes the job and finishes it."""
    settings = settings_of(database, tmp_path / "data")
    app = open_app(settings, database)
    try:
        planned = queue_jobs(app, folders)
        logs = [tmp_path / f"events-w{n}.jsonl" for n in range(WORKERS)]
        # The victim sleeps a second at each point between two writes.
        workers = start_workers(
            settings, database, logs, hooks={"SEMSEARCH_TEST_PAUSE_S": "1"}
        )
        victim, *others = workers.processes
        wanted = {"event": "crash_point", "name": "points-written"}
        killed_job = wait_for_event(logs[0], victim, wanted)
        victim.kill()
        victim.join()
        died = time.monotonic()
        join_all(others)

        found = holds(logs, deaths={"w0": died})
        assert_one_holder_at_a_time(found)
        done = assert_every_job_done_once(app, planned, found)
        # The victim died in its run of that job (no end recorded), and the
        # job was claimed again, by another worker, once its lease had expired.
        assert victim.exitcode == -9
        cut_short = [h for h in found if h.worker == "w0" and h.end == died]
        assert [h.job for h in cut_short] == [killed_job]
        again = [h for h in found if h.job == killed_job and h.worker != "w0"]
        assert len(again) == 1
        assert again[0].start > died
        assert done[killed_job].attempts == 2
        assert {j.attempts for i, j in done.items() if i != killed_job} == {1}
        assert_index_is_whole(app, oracle)
    finally:
        app.close()
