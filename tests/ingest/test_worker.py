"""The worker: several jobs at once on the servers, and a stop that releases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TinyModelFactory, postgres_database
from sqlalchemy.orm import Session

from ingest import jobs
from ingest.consistency import check
from ingest.pipeline import IngestOptions
from search.access import Access
from search.app import App
from search.catalog import repository as repo
from search.catalog.engine import create_catalog_engine, upgrade
from search.catalog.models import Job, JobStatus
from search.cli.ingest import _run_slots
from search.cli.main import main
from search.settings import Settings


def _folders(root: Path, count: int, files: int = 3) -> list[Path]:
    folders = []
    for n in range(count):
        folder = root / f"set{n}"
        folder.mkdir(parents=True)
        for i in range(files):
            (folder / f"note{i}.txt").write_text(
                f"Set {n}, note {i}: the backup runs at night.", encoding="utf-8"
            )
        folders.append(folder)
    return folders


@pytest.fixture
def embedded(tmp_path: Path, tiny_model: TinyModelFactory) -> Iterator[App]:
    app = App(Settings(data_dir=tmp_path / "data", model=str(tiny_model())))
    yield app
    app.close()


def test_a_stop_during_a_job_releases_it_to_go_on_later(
    embedded: App, tmp_path: Path
) -> None:
    [folder] = _folders(tmp_path / "docs", 1, files=4)
    job_id = jobs.enqueue(embedded, jobs.ingest_params([folder], IngestOptions()))
    stop = threading.Event()
    with Session(embedded.engine, expire_on_commit=False) as session:
        job = repo.claim_job(session, job_id, jobs.worker_name())
    assert job is not None

    def after_the_first_file(source: str) -> None:
        stop.set()  # as SIGTERM does, while the first file is read

    summary = jobs.run_job(embedded, job, progress=after_the_first_file, stop=stop)
    assert summary.stopped
    assert summary.new == 1
    with Session(embedded.engine) as session:
        row = session.get(Job, job_id)
        assert row is not None
        assert row.status == JobStatus.QUEUED
        assert row.attempts == 0  # a release is not a failed attempt
        assert row.lease_expires_at is None

    again = jobs.claim(embedded)
    assert again is not None
    assert again.id == job_id
    rest = jobs.run_job(embedded, again)
    assert (rest.new, rest.unchanged, rest.stopped) == (3, 1, False)


def test_concurrency_needs_the_servers(
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    assert main(["worker", "--concurrency", "2"]) == 1
    assert "needs the servers" in capsys.readouterr().err
    assert main(["worker", "--concurrency", "0"]) == 1


@pytest.mark.postgres
def test_several_slots_share_one_queue_and_do_each_job_once(
    tmp_path: Path, tiny_model: TinyModelFactory
) -> None:
    from qdrant_client import QdrantClient

    from search.stores.server import ServerStore

    for url in postgres_database():
        settings = Settings(
            data_dir=tmp_path / "data", model=str(tiny_model()), database_url=url
        )
        engine = create_catalog_engine(settings.catalog_url)
        upgrade(engine)
        engine.dispose()
        app = App(settings, store=ServerStore(QdrantClient(":memory:")))
        try:
            folders = _folders(tmp_path / "docs", 6)
            ids = [
                jobs.enqueue(app, jobs.ingest_params([f], IngestOptions()))
                for f in folders
            ]
            stop = threading.Event()

            def stop_when_done(app: App = app, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    with Session(app.engine) as session:
                        left = [
                            j
                            for j in repo.list_jobs(session, limit=None)
                            if j.status in (JobStatus.QUEUED, JobStatus.RUNNING)
                        ]
                    if not left:
                        stop.set()
                    stop.wait(0.2)

            watcher = threading.Thread(target=stop_when_done, daemon=True)
            watcher.start()
            _run_slots(app, stop, 3)
            watcher.join(timeout=10)

            with Session(app.engine) as session:
                rows = [session.get(Job, i) for i in ids]
                assert all(r is not None and r.status == JobStatus.DONE for r in rows)
                assert all(r.attempts == 1 for r in rows if r is not None)
                workers = {r.worker for r in rows if r is not None}
                assert all("/" in str(w) for w in workers)  # a slot each
                counts = repo.count_documents(session, Access.unrestricted())
            assert counts == {"indexed": 18}
            assert app.store.count(app.collection) == 18
            report = check(app)
            assert report.consistent, report.lines()
        finally:
            app.close()
