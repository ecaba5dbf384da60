"""Ingest killed at any point: a rerun converges, and search never mixes versions.

In-process tests stop a run at each named point between two writes (the
pipeline's test hook raises instead of killing) on both backends; the
subprocess tests kill a real ``semsearch ingest`` with SIGKILL, at random
times and on a file that kills it each time it is read.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TinyModelFactory, store_ids
from sqlalchemy import select
from sqlalchemy.orm import Session

import ingest.consistency as consistency
from ingest.consistency import CRASH_POINTS, check
from ingest.pipeline import IngestOptions, Ingestor, point_id
from ingest.summary import IngestSummary
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Chunk, Document, Job, utcnow
from search.cli.main import main
from search.embedding_cache import text_hash
from search.errors import LeaseLostError
from search.retrieval import Searcher
from search.settings import Settings
from search.stores.base import Filter, MatchAny, Point

QUERIES = ("backup of the disks", "bread and yeast", "password reset")


class Crash(BaseException):
    """Stands in for SIGKILL in process: no handler in the pipeline catches it."""


@pytest.fixture
def crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash() -> None:
        raise Crash

    monkeypatch.setattr(consistency, "_kill", crash)
    monkeypatch.setattr(consistency, "_passed", Counter())


def write_corpus(folder: Path, passages: list[str], rng: random.Random, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        suffix = "md" if i % 3 == 0 else "txt"
        write_file(folder / f"doc-{i:02d}.{suffix}", passages, rng)


def write_file(path: Path, passages: list[str], rng: random.Random) -> None:
    text = "\n\n".join(rng.sample(passages, rng.randint(2, 6)))
    if path.suffix == ".md":
        text = f"---\ntitle: {path.stem}\n---\n{text}"
    path.write_text(text, encoding="utf-8")


def mutate(folder: Path, passages: list[str], rng: random.Random) -> None:
    """Change some files, delete some, add one."""
    files = sorted(folder.iterdir())
    for path in rng.sample(files, 3):
        write_file(path, passages, rng)
    for path in rng.sample(files, 1):
        path.unlink()
    write_file(folder / f"new-{rng.randrange(10**6):06d}.txt", passages, rng)


def ingest(app: App, folder: Path) -> IngestSummary:
    return Ingestor(app).run([folder], IngestOptions(prune=True))


def assert_whole_versions(app: App) -> None:
    """What a crash may leave: leftovers the catalog traces, nothing worse.

    Every active version is whole in the store, no point is unknown to the
    catalog, and every hit is a chunk of its document's active version.
    """
    report = check(app)
    assert report.orphans == []
    assert report.missing == {}
    assert report.group_drift == {}
    assert report.miscounted == {}

    with Session(app.engine) as session:
        rows = session.execute(
            select(Chunk.document_id, Chunk.ordinal, Chunk.text_hash)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.version == Document.active_version)
        )
        active = {(d, o): h for d, o, h in rows}
    searcher = Searcher.for_app(app)
    for query in QUERIES:
        hits = searcher.search(query, top_k=50)
        assert hits
        for hit in hits:
            assert active[(hit.document_id, hit.chunk_ordinal)] == text_hash(hit.text)


def add_version(
    app: App, document_id: str, version: str, writer: int | None = None
) -> int:
    """Copy the active chunk rows and points of a document as ``version``,
    as written by job ``writer``."""
    with Session(app.engine) as session:
        document = session.get(Document, document_id)
        assert document is not None
        rows = session.scalars(
            select(Chunk).where(
                Chunk.document_id == document_id,
                Chunk.version == document.active_version,
            )
        )
        copies = [
            {c.key: getattr(r, c.key) for c in Chunk.__table__.columns if c.key != "id"}
            | {"version": version, "writer": writer}
            for r in rows
        ]
        repo.add_chunks(session, copies)
        session.commit()
    found, _ = app.store.scroll(
        app.collection,
        Filter(must=(MatchAny("doc_id", (document_id,)),)),
        limit=1000,
    )
    vector = np.ones(app.encoder.dimension, dtype=np.float32)
    app.store.upsert(
        app.collection,
        [
            Point(
                point_id(document_id, version, p.payload["ordinal"]),
                vector,
                p.payload | {"version": version},
            )
            for p in found
        ],
    )
    return len(found)


def expected_ids(app: App) -> list[str]:
    """The point ids the catalog's active chunk rows call for."""
    with Session(app.engine) as session:
        rows = session.execute(
            select(Chunk.document_id, Chunk.version, Chunk.ordinal)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.version == Document.active_version)
        )
        return [point_id(d, v, o) for d, v, o in rows]


def fresh_ids(tmp_path: Path, model: Path, folder: Path) -> set[str]:
    """The point ids of a clean ingest of ``folder`` into a new data dir."""
    fresh = App(Settings(data_dir=tmp_path / "fresh", model=str(model)))
    try:
        ingest(fresh, folder)
        return store_ids(fresh)
    finally:
        fresh.close()


@pytest.mark.usefixtures("crashes")
def test_a_crash_between_any_two_writes_is_mended_by_a_rerun(
    app: App,
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    passages: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    folder = tmp_path / "corpus"
    write_corpus(folder, passages, rng, 8)
    ingest(app, folder)

    # Each round changes the corpus and stops the run at the next point; the
    # run after it sweeps what the crash left and stops at its own point.
    for point in CRASH_POINTS:
        mutate(folder, passages, rng)
        monkeypatch.setenv("SEMSEARCH_TEST_CRASH_AT", point)
        with pytest.raises(Crash):
            ingest(app, folder)
        assert_whole_versions(app)

    monkeypatch.delenv("SEMSEARCH_TEST_CRASH_AT")
    ingest(app, folder)
    report = check(app)
    assert report.consistent, report.lines()
    assert store_ids(app) == fresh_ids(tmp_path, tiny_model(), folder)


def test_the_sweep_leaves_versions_of_live_jobs_alone(
    tmp_path: Path, tiny_model: TinyModelFactory, passages: list[str]
) -> None:
    """A version another job is writing is nobody's leftover while its lease
    lives; once the lease has expired (its worker died), it is swept."""
    from qdrant_client import QdrantClient

    from search.stores.server import ServerStore

    settings = Settings(
        data_dir=tmp_path / "data",
        model=str(tiny_model()),
        qdrant_url="http://qdrant.invalid:6333",
        job_lease_s=30,
    )
    app = App(settings, store=ServerStore(QdrantClient(":memory:")))
    try:
        folder = tmp_path / "corpus"
        write_corpus(folder, passages, random.Random(3), 3)
        ingest(app, folder)
        with Session(app.engine, expire_on_commit=False) as session:
            for _ in range(2):
                repo.create_job(session, "ingest", {})
            session.commit()
            other = repo.claim_next_job(session, "elsewhere", lease_s=30)
            own = repo.claim_next_job(session, "here", lease_s=30)
        assert other is not None
        assert own is not None
        first, second, third = (
            repo.document_id_for(str(p.resolve())) for p in sorted(folder.iterdir())
        )
        # Versions in progress: rows, then points, of the other job, of this
        # job's own earlier attempt and of no job at all.
        in_progress = add_version(app, first, "elsewhere", writer=other.id)
        add_version(app, second, "own-earlier-attempt", writer=own.id)
        add_version(app, third, "no-job")

        lease = repo.Lease(own.id, "here", lease_s=30)
        Ingestor(app).run([folder], lease=lease)
        expected = {point_id(first, "elsewhere", n) for n in range(in_progress)}
        assert set(check(app).leftovers) == expected

        # The other worker died: once its lease (and the clock allowance of
        # one more lease) has passed, its rows are leftovers like any.
        with Session(app.engine) as session:
            row = session.get(Job, other.id)
            assert row is not None
            row.lease_expires_at = utcnow() - timedelta(seconds=31)
            session.commit()
        Ingestor(app).run([folder], lease=lease)
        assert check(app).consistent
    finally:
        app.close()


def test_a_run_whose_lease_was_taken_over_activates_nothing(
    tmp_path: Path, tiny_model: TinyModelFactory, passages: list[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", model=str(tiny_model()))
    app = App(settings)
    try:
        folder = tmp_path / "corpus"
        write_corpus(folder, passages, random.Random(4), 3)
        with Session(app.engine, expire_on_commit=False) as session:
            repo.create_job(session, "ingest", {})
            session.commit()
            job = repo.claim_next_job(session, "slow", lease_s=30)
            assert job is not None
            # Another worker took the job over after the lease expired.
            later = utcnow() + timedelta(seconds=31)
            assert repo.claim_next_job(session, "fast", now=later) is not None

        with pytest.raises(LeaseLostError, match="no longer slow's"):
            Ingestor(app).run([folder], lease=repo.Lease(job.id, "slow", 30))
        with Session(app.engine) as session:
            assert set(session.scalars(select(Document.active_version))) == {None}
            writers = set(session.scalars(select(Chunk.writer)))
        assert writers == {job.id}
    finally:
        app.close()


@pytest.mark.usefixtures("crashes")
def test_a_file_that_kills_every_read_is_given_up(
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    passages: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(11)
    folder = tmp_path / "corpus"
    write_corpus(folder, passages, rng, 4)
    poison = folder / "doc-02.txt"
    app = App(Settings(data_dir=tmp_path / "data", model=str(tiny_model())))
    monkeypatch.setenv("SEMSEARCH_TEST_CRASH_ON", poison.name)

    def attempts() -> dict[str, int]:
        with Session(app.engine) as session:
            return {
                Path(d.source_path).name: d.attempts
                for d in session.scalars(select(Document))
            }

    try:
        for run in range(1, 6):
            with pytest.raises(Crash):
                ingest(app, folder)
            # Only the file being read when the process died is blamed.
            assert attempts() == {"doc-00.md": 0, "doc-01.txt": 0, poison.name: run}

        summary = ingest(app, folder)
        assert summary.new == 3
        gave_up = (
            "gave up after 5 attempts: the ingest stopped while reading this file "
            "each time"
        )
        assert summary.failures == [{"path": str(poison.resolve()), "error": gave_up}]
        with Session(app.engine) as session:
            row = repo.get_document(
                session, repo.document_id_for(str(poison.resolve()))
            )
            assert row is not None
            assert (row.status, row.error) == ("failed", gave_up)
        # It blocks nothing: later runs do not read it again.
        ingest(app, folder)

        # A changed file is another file: it gets fresh attempts.
        monkeypatch.delenv("SEMSEARCH_TEST_CRASH_ON")
        write_file(poison, passages, rng)
        summary = ingest(app, folder)
        assert (summary.new, summary.failed) == (1, 0)
        assert set(attempts().values()) == {0}
        assert check(app).consistent
    finally:
        app.close()


# -- real processes, killed -------------------------------------------------

PRELOAD = [
    "pytest",
    "transformers.models.bert.modeling_bert",
    "search.cli.main",
    "search.encoder",
    "search.retrieval",
    "ingest.jobs",
]
HOOKS = ("SEMSEARCH_TEST_CRASH_AT", "SEMSEARCH_TEST_CRASH_ON", "SEMSEARCH_TEST_PAUSE_S")


@pytest.fixture(scope="module")
def forks() -> ForkServerContext:
    """Starts ingest processes forked from a server that imported the code once.

    Each child is a process of its own that runs the CLI's ``main`` and dies
    of SIGKILL like any other; forking it from a server that has imported
    torch and transformers (and run nothing) spares the 5-10 s a fresh
    interpreter spends importing them. One run at the end goes through
    ``python -m search.cli.main`` itself.
    """
    context = multiprocessing.get_context("forkserver")
    # Python 3.11's fork server does not take the tests' sys.path: it preloads
    # what is installed, and a child imports this module from there cheaply.
    context.set_forkserver_preload(PRELOAD)
    return context


def semsearch(argv: list[str], env: dict[str, str], log: str) -> None:
    """The body of a child: ``semsearch ARGV`` with ``env``, its output in ``log``."""
    for name in HOOKS:
        os.environ.pop(name, None)
    os.environ.update(env)
    with open(log, "w") as output:
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
    sys.exit(main(argv))


def start_ingest(
    forks: ForkServerContext,
    data: Path,
    folder: Path,
    model: Path,
    log: Path,
    **env: str,
) -> BaseProcess:
    """``semsearch -v ingest FOLDER --prune`` in a child process, logging to ``log``."""
    argv = ["-v", "--data-dir", str(data), "ingest", str(folder), "--prune"]
    env = {"SEMSEARCH_MODEL": str(model), "HF_HUB_OFFLINE": "1", **env}
    child = forks.Process(target=semsearch, args=(argv, env, str(log)))
    child.start()
    return child


def wait_for_line(
    child: BaseProcess, log: Path, text: str, timeout: float = 60
) -> bool:
    """Whether ``text`` appeared in the log before the child ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(encoding="utf-8", errors="replace"):
            return True
        if not child.is_alive():
            return False
        time.sleep(0.01)
    raise AssertionError(f"{text!r} not logged in {timeout} s")


def test_sigkill_at_random_times_then_a_rerun_converges(
    forks: ForkServerContext,
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    passages: list[str],
) -> None:
    """Kills early, midway and late in the work of real ingest processes.

    Each child pauses at the points between writes (``SEMSEARCH_TEST_PAUSE_S``)
    so that a kill at a random time often lands inside a window; the clock
    starts when the child has loaded the model, just before its writes begin.
    """
    rng = random.Random(20261203)
    model = tiny_model()
    data, folder = tmp_path / "data", tmp_path / "corpus"
    write_corpus(folder, passages, rng, 30)
    app = App(Settings(data_dir=data, model=str(model)))
    ingest(app, folder)
    app.close()

    delays = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.8), (0.0, 0.8)]
    for round, (low, high) in enumerate(delays):
        mutate(folder, passages, rng)
        log = tmp_path / f"ingest-{round}.log"
        child = start_ingest(
            forks, data, folder, model, log, SEMSEARCH_TEST_PAUSE_S="0.1"
        )
        if wait_for_line(child, log, "Loaded model"):
            time.sleep(rng.uniform(low, high))
        child.kill()
        child.join(timeout=60)
        app = App(Settings(data_dir=data, model=str(model)))
        try:
            assert_whole_versions(app)
        finally:
            app.close()

    # The last run to its end, as ``semsearch ingest`` runs from a shell.
    environment = {**os.environ, "SEMSEARCH_MODEL": str(model), "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "search.cli.main", "--data-dir", str(data)]
    argv += ["ingest", str(folder), "--prune"]
    finished = subprocess.run(
        argv, env=environment, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr

    app = App(Settings(data_dir=data, model=str(model)))
    try:
        report = check(app)
        assert report.consistent, report.lines()
        ids = store_ids(app)
        assert ids == set(expected_ids(app))
    finally:
        app.close()
    assert ids == fresh_ids(tmp_path, model, folder)


def test_a_file_that_kills_the_process_is_given_up_after_n_runs(
    forks: ForkServerContext,
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    passages: list[str],
) -> None:
    rng = random.Random(5)
    model = tiny_model()
    data, folder = tmp_path / "data", tmp_path / "corpus"
    write_corpus(folder, passages, rng, 4)
    poison = folder / "doc-01.txt"
    hooks = {"SEMSEARCH_TEST_CRASH_ON": poison.name, "SEMSEARCH_RETRY_ATTEMPTS": "2"}

    log = tmp_path / "ingest.log"
    for _ in range(2):
        child = start_ingest(forks, data, folder, model, log, **hooks)
        child.join(timeout=60)
        assert child.exitcode == -signal.SIGKILL
    child = start_ingest(forks, data, folder, model, log, **hooks)
    child.join(timeout=60)
    assert child.exitcode == 1  # a failed file, reported
    assert "gave up after 2 attempts" in log.read_text(encoding="utf-8")

    app = App(Settings(data_dir=data, model=str(model)))
    try:
        with Session(app.engine) as session:
            rows = {
                Path(d.source_path).name: d for d in session.scalars(select(Document))
            }
        assert rows[poison.name].status == "failed"
        assert rows[poison.name].error == (
            "gave up after 2 attempts: the ingest stopped while reading this file "
            "each time"
        )
        assert {n: d.status for n, d in rows.items() if n != poison.name} == {
            "doc-00.md": "indexed",
            "doc-02.txt": "indexed",
            "doc-03.md": "indexed",
        }
        assert check(app).consistent
    finally:
        app.close()
