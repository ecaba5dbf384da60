"""Ingest work as jobs in the catalog: enqueue, claim, run, record, retry.

``semsearch ingest`` enqueues a job and runs it itself when it can open the
vector store; when a worker (or the UI) holds the embedded store, the job
waits in the queue for that process, and the command follows it to the end.
``semsearch worker`` claims queued jobs one at a time; several workers may
share a server catalog and store, each job going to exactly one of them.

A server that is down (search.retry) stops a run without failing its job: the
job is queued again and claimed once its backoff has passed, by a worker or by
the same command run again; after ``SEMSEARCH_RETRY_ATTEMPTS`` runs it fails.
Other errors fail the job at once. Runs are idempotent (unchanged files are
skipped by content hash), so a job run again continues, in effect, where it
stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

from sqlalchemy.orm import Session

from ingest.pipeline import IngestOptions, Ingestor
from ingest.summary import IngestSummary
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Job, JobStatus, utcnow
from search.catalog.repository import Lease
from search.errors import IndexSwitchedError, LeaseLostError, SemsearchError
from search.retry import Backoff, is_transient, with_retries

if TYPE_CHECKING:
    from ingest.reindex import ReindexSummary

logger = logging.getLogger(__name__)

INGEST = "ingest"
REINDEX = "reindex"
T = TypeVar("T")
Summary = Union["IngestSummary", "ReindexSummary"]


class JobTakenError(SemsearchError):
    """The job was claimed by another worker before this process could."""


class JobStoppedError(SemsearchError):
    """A run stopped because a server is down; the message names it.

    ``status`` is where the job is now: ``queued`` again (to begin from
    ``not_before``), ``failed`` (its attempts used up), or None where the
    catalog could not record either (it still reads ``running``).
    """

    def __init__(
        self,
        cause: BaseException,
        job_id: int,
        status: str | None,
        attempts: int = 0,
        not_before: datetime | None = None,
    ) -> None:
        super().__init__(str(cause))
        self.job_id = job_id
        self.status = status
        self.attempts = attempts
        self.not_before = not_before

    def outcome(self) -> str:
        """What became of the job, in a few words, for logs and messages."""
        if self.status == JobStatus.QUEUED and self.not_before is not None:
            wait = max(0.0, (_as_utc(self.not_before) - utcnow()).total_seconds())
            return f"job {self.job_id} is queued again (next attempt in {wait:.0f} s)"
        if self.status == JobStatus.FAILED:
            return f"job {self.job_id} failed after {self.attempts} attempts"
        return f"job {self.job_id} could not be queued again"


def ingest_params(paths: list[Path], options: IngestOptions) -> dict[str, Any]:
    return {
        "paths": [str(p.expanduser().absolute()) for p in paths],
        "tags": list(options.tags),
        "groups": list(options.groups),
        "exclude": list(options.exclude),
        "prune": options.prune,
        "rules": options.rules,
    }


def options_of(params: dict[str, Any]) -> IngestOptions:
    """The options a job's ``params`` (:func:`ingest_params`) stand for."""
    return IngestOptions(
        tags=params.get("tags", []),
        groups=params.get("groups", []),
        exclude=params.get("exclude", []),
        prune=bool(params.get("prune", False)),
        rules=params.get("rules"),
    )


def enqueue(
    app: App,
    params: dict[str, Any],
    backoff: Backoff | None = None,
    kind: str = INGEST,
) -> int:
    """Queue a job, or resume the same one queued again after a stop.

    A catalog server that is briefly away is waited for (``backoff``; default:
    the settings').
    """

    def create() -> int:
        with Session(app.engine) as session:
            job = repo.get_retry_job(session, kind, params)
            if job is None:
                job = repo.create_job(session, kind, params)
                session.commit()
            return job.id

    return with_retries(create, backoff or Backoff.from_settings(app.settings))


def worker_name(slot: int | None = None) -> str:
    """``host:pid``, and the slot of a worker running several jobs at once."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return name if slot is None else f"{name}/{slot}"


class Heartbeat:
    """Renews a running job's lease every third of it, in a thread of its own.

    A worker that dies stops renewing, the lease expires, and another worker
    claims the job again (repository.claim_next_job); the rerun is idempotent.
    """

    def __init__(self, app: App, lease: Lease) -> None:
        self.app = app
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{lease.job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        lease = self.lease
        while not self._stop.wait(lease.lease_s / 3):
            try:
                with Session(self.app.engine) as session:
                    held = repo.renew_lease(
                        session, lease.job_id, lease.worker, lease.lease_s
                    )
            except Exception as exc:  # a catalog blip: the next beat tries again
                logger.warning("Job %d: lease not renewed: %s", lease.job_id, exc)
                continue
            if not held:
                logger.warning(
                    "Job %d: the lease was lost (it expired, or another worker "
                    "took the job over)",
                    lease.job_id,
                )
                lease.lost.set()
                return


def run_job(
    app: App,
    job: Job,
    progress: Callable[[str], None] | None = None,
    backoff: Backoff | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """Run a claimed job (an ingest, or a reindex: ingest.reindex) and record
    its outcome.

    When ``stop`` is set meanwhile (the worker shuts down), the run ends after
    the file at hand and the job goes back to the queue (not counted as an
    attempt), to go on where it ended in the next worker that claims it.

    A server still down after the in-call retries raises
    :class:`JobStoppedError`, the job queued again or, on its last attempt,
    failed. Any other error fails the job and is raised as it was.
    ``backoff`` defaults to the settings'.
    """
    backoff = backoff or Backoff.from_settings(app.settings)
    try:
        # A server that is down stops the job before any file is read.
        with_retries(lambda: app.store, backoff)
        if app.settings.embedded_store:
            recover_abandoned(app, job.id, backoff)
        lease = Lease(job.id, job.worker or worker_name(), app.settings.job_lease_s)
        with Heartbeat(app, lease):
            summary = _run_kind(app, job, lease, progress, stop)
    except LeaseLostError:
        # Nothing to record: the job is the next holder's, who reruns it.
        raise
    except Exception as exc:
        if is_transient(exc):
            raise _stop(app, job.id, exc, backoff) from exc
        error = f"{type(exc).__name__}: {exc}"
        _record(
            app,
            job.id,
            backoff,
            lambda s, row: repo.finish_job(s, row, None, error),
            worker=job.worker,
        )
        raise
    if summary.stopped:
        _record(app, job.id, backoff, repo.release_job, worker=job.worker)
        logger.info("Job %d released: the worker is stopping", job.id)
        return summary
    _record(
        app,
        job.id,
        backoff,
        lambda s, row: repo.finish_job(s, row, summary.as_dict()),
        worker=job.worker,
    )
    return summary


def _run_kind(
    app: App,
    job: Job,
    lease: Lease,
    progress: Callable[[str], None] | None,
    stop: threading.Event | None,
) -> Summary:
    if job.kind == REINDEX:
        from ingest.reindex import Reindexer

        gate = job.params.get("gate")
        return Reindexer(app, job.params["model"], lease, stop, progress).run(
            Path(gate) if gate else None, job.params.get("split") or "test"
        )
    paths = [Path(p) for p in job.params["paths"]]
    # A reindex may switch the index while the run writes; nothing it wrote
    # became active then, and it runs again on the new index (twice at most).
    for attempt in range(3):
        app.refresh_active()
        try:
            return Ingestor(app).run(
                paths, options_of(job.params), progress=progress, lease=lease, stop=stop
            )
        except IndexSwitchedError as exc:
            if attempt == 2:
                raise
            logger.info("Job %d: %s; running it again", job.id, exc)
    raise AssertionError("unreachable")


def recover_abandoned(app: App, current: int, backoff: Backoff) -> int:
    """Queue again the jobs a stopped process left 'running'; how many.

    Only with the embedded store, which one process holds at a time: while
    this one holds it, no other job can be running, so one marked so was
    left by a process that was killed. A job abandoned ``attempts`` times
    fails (the file that kills the worker is then found by the document
    attempts of the pipeline). Server deployments reclaim jobs by lease.
    """
    with Session(app.engine) as session:
        this_process = worker_name()
        abandoned = [
            job
            for job in repo.list_jobs(session, JobStatus.RUNNING, limit=None)
            # This process's own jobs (another slot's, or this one) are alive.
            if job.id != current and (job.worker or "").split("/")[0] != this_process
        ]
        for job in abandoned:
            cause = f"the process running it ({job.worker}) stopped"
            if job.attempts >= backoff.attempts:
                error = f"{cause} (gave up after {job.attempts} attempts)"
                repo.finish_job(session, job, None, error)
            else:
                repo.requeue_job(session, job, cause, None)
            logger.warning("Job %d: %s; recovered", job.id, cause)
        session.commit()
    return len(abandoned)


def _stop(app: App, job_id: int, cause: Exception, backoff: Backoff) -> JobStoppedError:
    """Queue the job again after a wait, or fail it on its last attempt.

    The waits continue the in-call schedule (search.retry): a run that gave
    up after ``attempts - 1`` waits is followed by the next ones.
    """

    def requeue(session: Session, row: Job) -> JobStoppedError:
        if row.attempts >= backoff.attempts:
            error = f"{cause} (gave up after {row.attempts} attempts)"
            repo.finish_job(session, row, None, error)
            return JobStoppedError(cause, job_id, JobStatus.FAILED, row.attempts)
        wait = backoff.wait_s(backoff.attempts - 1 + row.attempts)
        not_before = utcnow() + timedelta(seconds=wait)
        repo.requeue_job(session, row, str(cause), not_before)
        return JobStoppedError(
            cause, job_id, JobStatus.QUEUED, row.attempts, not_before
        )

    try:
        stopped = _record(app, job_id, backoff, requeue)
    except Exception as lost:
        if not is_transient(lost):
            raise
        logger.error(
            "Job %d stopped (%s) and cannot be recorded: %s", job_id, cause, lost
        )
        stopped = None
    return stopped or JobStoppedError(cause, job_id, None)


def _record(
    app: App,
    job_id: int,
    backoff: Backoff,
    change: Callable[[Session, Job], T],
    worker: str | None = None,
) -> T | None:
    """Apply ``change`` to the job's row and commit, waiting out a catalog blip.

    With ``worker``, only while the job is still that worker's: a worker whose
    lease expired (another took the job over) leaves the outcome to it.
    """

    def write() -> T | None:
        with Session(app.engine) as session:
            row = session.get(Job, job_id)
            if row is None:
                return None
            if worker is not None and (
                row.status != JobStatus.RUNNING or row.worker != worker
            ):
                logger.warning(
                    "Job %d is no longer %s's; its outcome is left to %s",
                    job_id,
                    worker,
                    row.worker,
                )
                return None
            result = change(session, row)
            session.commit()
            return result

    return with_retries(write, backoff)


def claim(app: App, worker: str | None = None) -> Job | None:
    """Take the oldest job that is due, or whose worker's lease expired.

    A job claimed more often than the settings' attempts (its workers kept
    dying) is failed instead, and the next one is taken.
    """
    limit = app.settings.retry_attempts
    with Session(app.engine, expire_on_commit=False) as session:
        while True:
            job = repo.claim_next_job(
                session, worker or worker_name(), lease_s=app.settings.job_lease_s
            )
            if job is None or job.attempts <= limit:
                return job
            error = f"gave up after {limit} attempts: its workers stopped each time"
            repo.finish_job(session, job, None, error)
            session.commit()
            logger.warning("Job %d: %s", job.id, error)


def run_claimed(
    app: App,
    job_id: int,
    progress: Callable[[str], None] | None = None,
    backoff: Backoff | None = None,
) -> Summary:
    """Claim job ``job_id`` (queued by this process, due or not) and run it here."""
    with Session(app.engine, expire_on_commit=False) as session:
        job = repo.claim_job(
            session, job_id, worker_name(), lease_s=app.settings.job_lease_s
        )
    if job is None:
        raise JobTakenError(f"job {job_id} was taken by another worker")
    return run_job(app, job, progress=progress, backoff=backoff)


def run_queued(
    app: App,
    stop: threading.Event,
    poll_s: float = 1.0,
    lock: AbstractContextManager[Any] | None = None,
    backoff: Backoff | None = None,
    worker: str | None = None,
) -> int:
    """Run queued jobs until ``stop`` is set; returns how many ran.

    ``lock`` is held while a job is claimed and run, so that a process with
    other ingests of its own (the UI) runs one at a time. A catalog that is
    down is waited for, with growing waits, and the loop goes on when it is
    back. ``stop`` set during a job releases it after the file at hand.
    ``worker`` names this loop in claims (default: the process).
    """
    backoff = backoff or Backoff.from_settings(app.settings)
    done = 0
    outage = 0
    while not stop.is_set():
        with lock or nullcontext():
            try:
                job = claim(app, worker)
                outage = 0
            except Exception as exc:
                if not is_transient(exc):
                    raise
                job, outage = None, outage + 1
                logger.warning(
                    "Cannot take jobs: %s; trying again in %.0f s",
                    exc,
                    backoff.wait_s(outage),
                )
            if job is not None:
                _run_logged(app, job, backoff, stop)
                done += 1
        if job is None:
            stop.wait(backoff.wait_s(outage) if outage else poll_s)
    return done


def _run_logged(
    app: App, job: Job, backoff: Backoff, stop: threading.Event | None = None
) -> None:
    """Run a job of the queue; its failure is logged and blocks no other job."""
    logger.info("Running job %d for %s", job.id, job.params.get("paths"))
    try:
        run_job(app, job, backoff=backoff, stop=stop)
    except JobStoppedError as exc:
        logger.warning("Job %d stopped: %s; %s", job.id, exc, exc.outcome())
    except LeaseLostError as exc:
        logger.warning("Job %d stopped: %s", job.id, exc)
    except Exception:
        logger.exception("Job %d failed", job.id)


def wait_for(app: App, job_id: int, poll_s: float = 0.5) -> Job:
    """Block until another process has finished job ``job_id``."""
    while True:
        with Session(app.engine, expire_on_commit=False) as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.status in (JobStatus.DONE, JobStatus.FAILED):
                return job
        time.sleep(poll_s)


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
