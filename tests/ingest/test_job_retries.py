"""Jobs and servers that are down: retried runs, backoff, giving up, --retry-failed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TinyModelFactory, postgres_database
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest import jobs
from ingest.pipeline import IngestOptions, Ingestor
from search.app import App
from search.catalog import repository as repo
from search.catalog.engine import create_catalog_engine, upgrade
from search.catalog.models import Chunk, Document, Job, JobStatus
from search.cli.main import main
from search.errors import InvalidInputError
from search.retry import Backoff, CatalogUnavailableError
from search.settings import Settings
from search.stores import ServerStore

FAR_AHEAD = datetime.now(UTC) + timedelta(days=1)


class Waits(list[float]):
    """A sleep that only records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class FlakyClient:
    """An in-memory Qdrant that fails as an unreachable server would, for its
    next ``down`` requests."""

    def __init__(self) -> None:
        self._client = QdrantClient(":memory:")
        self.init_options = self._client.init_options
        self.down = 0
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or name == "close" or not callable(attribute):
            return attribute

        def request(*args: Any, **kwargs: Any) -> Any:
            if self.down > 0:
                self.down -= 1
                self.failed += 1
                raise ResponseHandlingException(httpx.ConnectError("refused"))
            return attribute(*args, **kwargs)

        return request


AppFactory = Callable[[Backoff], tuple[App, FlakyClient]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_app(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_model: TinyModelFactory
) -> Iterator[AppFactory]:
    """Apps on a flaky in-memory Qdrant, each with a catalog of its own."""
    made: list[App] = []
    databases: list[Iterator[str]] = []

    def make(backoff: Backoff) -> tuple[App, FlakyClient]:
        options: dict[str, Any] = {}
        if request.param == "postgres":
            databases.append(postgres_database())
            options["database_url"] = next(databases[-1])
        settings = Settings(
            data_dir=tmp_path / f"data{len(made)}", model=str(tiny_model()), **options
        )
        if request.param == "postgres":
            engine = create_catalog_engine(settings.catalog_url)
            upgrade(engine)
            engine.dispose()
        client = FlakyClient()
        store = ServerStore(client, retry=backoff)  # type: ignore[arg-type]
        made.append(App(settings, store=store))
        return made[-1], client

    yield make
    for app in made:
        app.close()
    for database in databases:
        next(database, None)  # drops it


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "notes").mkdir(parents=True)
    (folder / "backup.txt").write_text(
        "Back up the team share every night and keep a copy off site. " * 20, "utf-8"
    )
    (folder / "notes" / "bread.txt").write_text(
        "Bread rises: yeast turns sugar into carbon dioxide.", "utf-8"
    )
    (folder / "notes" / "reset.txt").write_text(
        "Reset a password from the account page.", "utf-8"
    )
    return folder


def queue(app: App, docs: Path, **options: Any) -> int:
    return jobs.enqueue(app, jobs.ingest_params([docs], IngestOptions(**options)))


def job_row(app: App, job_id: int) -> Job:
    with Session(app.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def claim_at(app: App, moment: datetime) -> Job | None:
    with Session(app.engine, expire_on_commit=False) as session:
        return repo.claim_next_job(session, "test", now=moment)


def index_state(app: App) -> dict[str, Any]:
    """What the catalog and the store hold, comparable between two apps."""
    with Session(app.engine) as session:
        documents = sorted(
            (d.source_path, d.status, d.active_version, d.chunk_count)
            for d in session.scalars(select(Document))
        )
        chunks = session.scalar(select(func.count()).select_from(Chunk))
    points, _ = app.store.scroll(app.collection, limit=10_000)
    return {
        "documents": documents,
        "chunks": chunks,
        "points": sorted((p.id, json.dumps(p.payload, sort_keys=True)) for p in points),
    }


def test_a_store_failing_its_first_requests_gives_the_same_index(
    make_app: AppFactory, docs: Path
) -> None:
    clean, _ = make_app(Backoff(sleep=Waits()))
    jobs.run_claimed(clean, queue(clean, docs))

    waits = Waits()
    flaky_app, flaky = make_app(Backoff(attempts=5, first_s=1, sleep=waits))
    flaky.down = 3
    summary = jobs.run_claimed(flaky_app, queue(flaky_app, docs))

    assert flaky.failed == 3
    assert waits == [1, 2, 4]
    assert summary.new == 3
    assert index_state(flaky_app) == index_state(clean)


def test_a_job_stopped_by_a_server_down_is_queued_again_then_done(
    make_app: AppFactory, docs: Path
) -> None:
    app, flaky = make_app(Backoff(attempts=5, first_s=1, sleep=Waits()))
    job_id = queue(app, docs)
    flaky.down = 5  # every try of the first request

    before = datetime.now(UTC)
    with pytest.raises(jobs.JobStoppedError) as caught:
        jobs.run_claimed(app, job_id, backoff=Backoff(5, 1, sleep=Waits()))
    stopped = caught.value
    assert "Qdrant is unavailable" in str(stopped)
    assert stopped.status == JobStatus.QUEUED
    assert "queued again (next attempt in 16 s)" in stopped.outcome()

    row = job_row(app, job_id)
    assert (row.status, row.attempts, row.worker) == (JobStatus.QUEUED, 1, None)
    assert row.error is not None
    assert "Qdrant is unavailable" in row.error
    assert row.not_before is not None
    # The waits go on from the in-call ones (1, 2, 4, 8 s): 16 s next.
    not_before = row.not_before.replace(tzinfo=row.not_before.tzinfo or UTC)
    assert before + timedelta(seconds=15) < not_before < before + timedelta(seconds=30)

    assert claim_at(app, datetime.now(UTC)) is None  # not due yet
    job = claim_at(app, not_before + timedelta(seconds=1))
    assert job is not None
    assert job.id == job_id
    summary = jobs.run_job(app, job)
    assert summary.new == 3
    row = job_row(app, job_id)
    assert (row.status, row.attempts, row.error) == (JobStatus.DONE, 2, None)


def test_a_job_gives_up_after_its_attempts_and_blocks_nothing(
    make_app: AppFactory, docs: Path
) -> None:
    backoff = Backoff(attempts=3, first_s=0, sleep=Waits())
    app, flaky = make_app(backoff)
    doomed = queue(app, docs)
    flaky.down = 10**6

    outcomes = []
    for _ in range(3):
        job = claim_at(app, FAR_AHEAD)
        assert job is not None
        assert job.id == doomed
        with pytest.raises(jobs.JobStoppedError) as caught:
            jobs.run_job(app, job, backoff=backoff)
        outcomes.append(caught.value.status)
    assert outcomes == [JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.FAILED]

    row = job_row(app, doomed)
    assert (row.status, row.attempts) == (JobStatus.FAILED, 3)
    assert row.error is not None
    assert "Qdrant is unavailable" in row.error
    assert "gave up after 3 attempts" in row.error

    flaky.down = 0
    other = queue(app, docs / "notes")
    job = claim_at(app, FAR_AHEAD)
    assert job is not None
    assert job.id == other
    assert jobs.run_job(app, job, backoff=backoff).new == 2


def test_a_job_failing_for_another_reason_fails_at_once(
    make_app: AppFactory, docs: Path, tmp_path: Path
) -> None:
    app, _ = make_app(Backoff(sleep=Waits()))
    job_id = queue(app, docs, rules=str(tmp_path / "missing-rules.toml"))
    with pytest.raises(InvalidInputError, match="access rules"):
        jobs.run_claimed(app, job_id)
    row = job_row(app, job_id)
    assert (row.status, row.attempts) == (JobStatus.FAILED, 1)
    assert row.error is not None
    assert row.error.startswith("InvalidInputError")


def test_a_catalog_lost_midway_queues_the_job_again(
    make_app: AppFactory, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = make_app(Backoff(sleep=Waits()))
    job_id = queue(app, docs)

    def lost(*_: object, **__: object) -> None:
        raise CatalogUnavailableError("PostgreSQL at db:5432/x is unreachable (gone)")

    monkeypatch.setattr(Ingestor, "run", lost)
    with pytest.raises(jobs.JobStoppedError, match="PostgreSQL at db:5432/x"):
        jobs.run_claimed(app, job_id, backoff=Backoff(sleep=Waits()))
    assert job_row(app, job_id).status == JobStatus.QUEUED


def test_claim_skips_jobs_that_are_not_due(make_app: AppFactory) -> None:
    app, _ = make_app(Backoff(sleep=Waits()))
    now = datetime.now(UTC)
    with Session(app.engine) as session:
        later = repo.create_job(session, jobs.INGEST, {"paths": ["/later"]})
        later.not_before = now + timedelta(minutes=5)
        due = repo.create_job(session, jobs.INGEST, {"paths": ["/due"]})
        due.not_before = now - timedelta(seconds=1)
        plain = repo.create_job(session, jobs.INGEST, {"paths": ["/plain"]})
        session.commit()
        ids = (later.id, due.id, plain.id)

    taken = [claim_at(app, now), claim_at(app, now), claim_at(app, now)]
    assert [j.id if j else None for j in taken] == [ids[1], ids[2], None]
    job = claim_at(app, now + timedelta(minutes=6))
    assert job is not None
    assert job.id == ids[0]


def test_running_the_command_again_resumes_the_stopped_job(
    make_app: AppFactory, docs: Path
) -> None:
    app, flaky = make_app(Backoff(attempts=2, first_s=0, sleep=Waits()))
    job_id = queue(app, docs)
    assert queue(app, docs) != job_id  # a job never run is its queuer's own
    flaky.down = 2
    with pytest.raises(jobs.JobStoppedError):
        jobs.run_claimed(app, job_id, backoff=Backoff(attempts=3, sleep=Waits()))

    assert queue(app, docs) == job_id
    assert queue(app, docs, tags=["other"]) != job_id
    jobs.run_claimed(app, job_id)  # due or not: the command asked for it
    assert job_row(app, job_id).status == JobStatus.DONE


def test_the_queue_loop_waits_out_a_catalog_that_is_down(
    make_app: AppFactory, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = make_app(Backoff(sleep=Waits()))
    job_id = queue(app, docs)
    stop = threading.Event()
    real_claim = jobs.claim
    calls: list[int] = []

    def claim(app: App, worker: str | None = None) -> Job | None:
        calls.append(1)
        if len(calls) <= 2:
            raise CatalogUnavailableError("PostgreSQL at db:5432/x is unreachable")
        job = real_claim(app, worker)
        if job is None:
            stop.set()
        return job

    monkeypatch.setattr(jobs, "claim", claim)
    ran = jobs.run_queued(app, stop, poll_s=0, backoff=Backoff(first_s=0))
    assert ran == 1
    assert job_row(app, job_id).status == JobStatus.DONE


# --retry-failed, through the command line (embedded store and catalog).


@pytest.fixture
def cli_env(
    tmp_path: Path, tiny_model: TinyModelFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    return tmp_path / "data"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_retry_failed_ingests_a_fixed_document_with_its_job_options(
    cli_env: Path, docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = docs / "notes" / "later.txt"
    broken.write_text("", "utf-8")  # nothing to index: a failure until written
    code, _, err = run(["ingest", str(docs), "--group", "staff"], capsys)
    assert code == 1
    assert f"failed: {broken.resolve()}: " in err

    code, out, _ = run(["jobs", "--failed"], capsys)
    assert "later.txt" in out
    broken.write_text("Written at last: notes about the later plan.", "utf-8")

    code, out, err = run(["ingest", "--retry-failed", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["new"], summary["unchanged"], summary["failed"]) == (1, 3, 0)
    assert "retrying 1 failed documents" in err

    settings = Settings(data_dir=cli_env)
    app = App(settings)
    try:
        with Session(app.engine) as session:
            document = repo.get_document(
                session, repo.document_id_for(str(broken.resolve()))
            )
            assert document is not None
            assert (document.status, document.access_groups) == ("indexed", ["staff"])
    finally:
        app.close()

    code, out, _ = run(["ingest", "--retry-failed"], capsys)
    assert (code, out.strip()) == (0, "no failed documents")


def test_retry_failed_refuses_options_of_its_own(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["ingest", "--retry-failed", "--group", "staff"], capsys)
    assert code == 1
    assert "--retry-failed takes the options of the jobs" in err
    code, _, err = run(["ingest"], capsys)
    assert code == 1
    assert "name a PATH to ingest, or give --retry-failed" in err


def test_retry_failed_leaves_documents_no_job_ingested(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = App(Settings(data_dir=cli_env))
    try:
        with Session(app.engine) as session:
            repo.create_failed_document(session, "/nowhere/x.txt", "txt", "gone")
            session.commit()
    finally:
        app.close()
    code, _out, err = run(["ingest", "--retry-failed"], capsys)
    assert code == 0
    assert "not retried: /nowhere/x.txt: no recorded job ingested it" in err


def test_jobs_a_killed_process_left_running_are_queued_again(
    tmp_path: Path, tiny_model: TinyModelFactory
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A note.", encoding="utf-8")
    app = App(Settings(data_dir=tmp_path / "data", model=str(tiny_model())))
    try:
        params = jobs.ingest_params([docs], IngestOptions())
        ghosts = [jobs.enqueue(app, {**params, "tags": [f"t{i}"]}) for i in range(2)]
        with Session(app.engine) as session:
            for ghost in ghosts:
                repo.claim_job(session, ghost, "gone-host:1")
            # The second was abandoned as often as the settings allow.
            session.get(Job, ghosts[1]).attempts = app.settings.retry_attempts  # type: ignore[union-attr]
            session.commit()

        current = jobs.enqueue(app, params)
        jobs.run_claimed(app, current)
        with Session(app.engine) as session:
            requeued, failed = (session.get(Job, g) for g in ghosts)
            assert requeued is not None
            assert failed is not None
            assert requeued.status == JobStatus.QUEUED
            assert "gone-host:1" in (requeued.error or "")
            assert failed.status == JobStatus.FAILED
            assert "gave up after" in (failed.error or "")
            assert session.get(Job, current).status == JobStatus.DONE  # type: ignore[union-attr]
    finally:
        app.close()
