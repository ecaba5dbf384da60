"""Ingest work as jobs in the catalog: enqueue, claim, run, record.

``semsearch ingest`` enqueues a job and runs it itself when it can open the
vector store; when a worker (or the UI) holds the embedded store, the job
waits in the queue for that process, and the command follows it to the end.
``semsearch worker`` claims queued jobs one at a time; several workers may
share a server catalog and store, each job going to exactly one of them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ingest.pipeline import IngestOptions, Ingestor
from ingest.summary import IngestSummary
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Job, JobStatus
from search.errors import SemsearchError

logger = logging.getLogger(__name__)

INGEST = "ingest"


def ingest_params(paths: list[Path], options: IngestOptions) -> dict[str, Any]:
    return {
        "paths": [str(p.expanduser().absolute()) for p in paths],
        "tags": list(options.tags),
        "groups": list(options.groups),
        "exclude": list(options.exclude),
        "prune": options.prune,
        "rules": options.rules,
    }


def enqueue(app: App, params: dict[str, Any]) -> int:
    with Session(app.engine) as session:
        job = repo.create_job(session, INGEST, params)
        session.commit()
        return job.id


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(
    app: App, job: Job, progress: Callable[[str], None] | None = None
) -> IngestSummary:
    """Run a claimed job and record its outcome; errors are recorded, then raised."""
    params = job.params
    options = IngestOptions(
        tags=params.get("tags", []),
        groups=params.get("groups", []),
        exclude=params.get("exclude", []),
        prune=bool(params.get("prune", False)),
        rules=params.get("rules"),
    )
    ingestor = Ingestor(app)
    with Session(app.engine) as session:
        try:
            paths = [Path(p) for p in params["paths"]]
            summary = ingestor.run(paths, options, progress=progress)
        except Exception as exc:
            row = session.get(Job, job.id)
            if row is not None:
                repo.finish_job(
                    session, row, None, error=f"{type(exc).__name__}: {exc}"
                )
                session.commit()
            raise
        row = session.get(Job, job.id)
        if row is not None:
            repo.finish_job(session, row, summary.as_dict())
            session.commit()
    return summary


def claim(app: App) -> Job | None:
    with Session(app.engine, expire_on_commit=False) as session:
        return repo.claim_next_job(session, worker_name())


def run_claimed(
    app: App, job_id: int, progress: Callable[[str], None] | None = None
) -> IngestSummary:
    """Claim job ``job_id`` (queued by this process) and run it here."""
    with Session(app.engine, expire_on_commit=False) as session:
        job = repo.claim_job(session, job_id, worker_name())
    if job is None:
        raise SemsearchError(f"ingest job {job_id} was taken by another worker")
    return run_job(app, job, progress=progress)


def run_queued(
    app: App,
    stop: threading.Event,
    poll_s: float = 1.0,
    lock: AbstractContextManager[Any] | None = None,
) -> int:
    """Run queued jobs until ``stop`` is set; returns how many ran.

    ``lock`` is held while a job is claimed and run, so that a process with
    other ingests of its own (the UI) runs one at a time.
    """
    done = 0
    while not stop.is_set():
        with lock or nullcontext():
            job = claim(app)
            if job is not None:
                logger.info("Running job %d for %s", job.id, job.params.get("paths"))
                try:
                    run_job(app, job)
                except Exception:
                    logger.exception("Job %d failed", job.id)
                done += 1
        if job is None:
            stop.wait(poll_s)
    return done


def wait_for(app: App, job_id: int, poll_s: float = 0.5) -> Job:
    """Block until another process has finished job ``job_id``."""
    while True:
        with Session(app.engine, expire_on_commit=False) as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.status in (JobStatus.DONE, JobStatus.FAILED):
                return job
        time.sleep(poll_s)
