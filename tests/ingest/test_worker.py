"""The worker: several jobs at once on the servers, and a stop that releases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TinyModelFactory
from sqlalchemy.orm import Session

from ingest import jobs
from ingest.pipeline import IngestOptions
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Job, JobStatus
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
