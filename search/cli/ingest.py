"""``semsearch ingest`` and ``semsearch worker``: files into the index."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from search.cli.common import open_app, print_json


def register(subparsers: Any) -> None:
    ingest = subparsers.add_parser(
        "ingest",
        help="index files and folders",
        description="Index the documents under PATH... (txt, md, html, pdf, docx). "
        "Unchanged files cost nothing; changed files are replaced whole. A server "
        "that is down stops the run; its job is queued again and resumes when this "
        "command is run again or a worker takes it.",
    )
    ingest.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    ingest.add_argument("--tag", action="append", default=[], help="tag every document")
    ingest.add_argument(
        "--group",
        action="append",
        default=[],
        help="access group of every document (repeat; documents with no group "
        "are public unless SEMSEARCH_UNGROUPED=private)",
    )
    ingest.add_argument(
        "--rules",
        type=Path,
        help="TOML file of path patterns and their access groups "
        "(default: SEMSEARCH_ACCESS_RULES)",
    )
    ingest.add_argument(
        "--exclude", action="append", default=[], help="glob of paths to skip"
    )
    ingest.add_argument(
        "--prune", action="store_true", help="remove documents whose files are gone"
    )
    ingest.add_argument(
        "--retry-failed",
        action="store_true",
        help="ingest again the documents that failed (under PATH... if given), "
        "each with the options of the newest job that covered it",
    )
    ingest.add_argument(
        "--queue",
        action="store_true",
        help="only queue the job for `semsearch worker` processes, and return",
    )
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    ingest.set_defaults(handler=run_ingest)

    worker = subparsers.add_parser(
        "worker",
        help="run queued ingest jobs and wait for more",
        description="Run ingest jobs from the catalog's queue until interrupted.",
    )
    worker.add_argument(
        "--once", action="store_true", help="stop when no queued job is due"
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="run N jobs at once (needs DATABASE_URL and QDRANT_URL; default 1)",
    )
    worker.set_defaults(handler=run_worker)


def run_ingest(args: argparse.Namespace) -> int:
    _check_arguments(args)
    app = open_app(args)
    try:
        job_ids = _queue_jobs(app, args)
        if not job_ids:
            return 0
        if args.queue:
            print(f"queued job {', '.join(str(i) for i in job_ids)}")
            return 0
        summary = _run_jobs(app, job_ids)
    finally:
        app.close()

    if args.json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary)
    return 1 if summary.failed else 0


def _check_arguments(args: argparse.Namespace) -> None:
    from search.errors import InvalidInputError

    if not args.paths and not args.retry_failed:
        raise InvalidInputError("name a PATH to ingest, or give --retry-failed")
    chosen = [args.tag, args.group, args.rules, args.exclude, args.prune]
    if args.retry_failed and any(chosen):
        raise InvalidInputError(
            "--retry-failed takes the options of the jobs that ingested the "
            "documents; leave out --tag, --group, --rules, --exclude and --prune"
        )


def _queue_jobs(app: Any, args: argparse.Namespace) -> list[int]:
    """Queue the command's jobs: one for PATH..., or those of --retry-failed."""
    from ingest import jobs
    from ingest.access_rules import load_rules
    from ingest.pipeline import IngestOptions
    from search.access import check_groups

    if args.retry_failed:
        return _queue_retries(app, args.paths)
    rules = args.rules.expanduser().absolute() if args.rules else None
    # Refused here, before a job is queued: a typo must not publish documents.
    check_groups(args.group)
    load_rules(rules or app.settings.access_rules)
    options = IngestOptions(
        tags=args.tag,
        groups=args.group,
        exclude=args.exclude,
        prune=args.prune,
        rules=str(rules) if rules else None,
    )
    return [jobs.enqueue(app, jobs.ingest_params(args.paths, options))]


def _queue_retries(app: Any, under: list[Path]) -> list[int]:
    from ingest import jobs
    from ingest.retry_failed import plan_retry_failed

    plan = plan_retry_failed(app, under)
    for source in plan.uncovered:
        print(
            f"semsearch: not retried: {source}: no recorded job ingested it; "
            "name it: semsearch ingest PATH",
            file=sys.stderr,
        )
    if not plan.documents and not plan.uncovered:
        print("no failed documents")
    elif plan.documents:
        print(f"retrying {len(plan.documents)} failed documents", file=sys.stderr)
    return [jobs.enqueue(app, params) for params in plan.params]


def _run_jobs(app: Any, job_ids: list[int]) -> Any:
    """Run the jobs here, or follow them in the process that holds the store."""
    from ingest import jobs
    from search.errors import SemsearchError

    if app.settings.embedded_store and not _holds_store(app, job_ids):
        return _merged([_summary_of(jobs.wait_for(app, i)) for i in job_ids])
    summaries = []
    for job_id in job_ids:
        try:
            with _progress_bar() as bar:
                summaries.append(jobs.run_claimed(app, job_id, progress=bar))
        except jobs.JobTakenError:
            summaries.append(_summary_of(jobs.wait_for(app, job_id)))
        except jobs.JobStoppedError as exc:
            raise SemsearchError(f"{exc}; {_what_now(exc)}") from None
    return _merged(summaries)


def _holds_store(app: Any, job_ids: list[int]) -> bool:
    """Open the embedded store here; False where a worker or the UI holds it
    and will run the jobs. Any other holder: the jobs are withdrawn, and the
    error raised."""
    from search.errors import StoreLockedError

    try:
        app.store  # noqa: B018 - opening the store tells who may run the job
    except StoreLockedError:
        owner = app.read_owner() or {}
        if owner.get("role") not in ("worker", "ui"):
            for job_id in job_ids:
                _cancel(app, job_id)
            raise
        print(
            f"semsearch: the store is held by {owner['role']} process "
            f"{owner.get('pid')}; job {', '.join(str(i) for i in job_ids)} "
            "is queued for it, waiting ...",
            file=sys.stderr,
        )
        return False
    return True


def _what_now(stopped: Any) -> str:
    """The job's fate and what the user can do, after a server stopped it."""
    from search.catalog.models import JobStatus

    if stopped.status == JobStatus.QUEUED:
        return (
            f"{stopped.outcome()} and will resume: rerun `semsearch ingest` or "
            "start `semsearch worker`"
        )
    return f"{stopped.outcome()}; rerun `semsearch ingest` once it is back"


def _summary_of(job: Any) -> Any:
    """The summary of a job another process ran; its error, if it failed."""
    from ingest.summary import IngestSummary
    from search.catalog.models import JobStatus
    from search.errors import SemsearchError

    if job.status == JobStatus.FAILED:
        raise SemsearchError(f"job {job.id} failed: {job.error}")
    return IngestSummary.from_dict(job.summary or {})


def _merged(summaries: list[Any]) -> Any:
    """One summary for several jobs: counts added, failures listed together."""
    from ingest.summary import IngestSummary

    if len(summaries) == 1:
        return summaries[0]
    total = IngestSummary()
    for summary in summaries:
        for name in ("new", "changed", "unchanged", "failed", "removed", "chunks"):
            setattr(total, name, getattr(total, name) + getattr(summary, name))
        total.chunks_encoded += summary.chunks_encoded
        total.chunks_reused += summary.chunks_reused
        total.seconds += summary.seconds
        total.failures.extend(summary.failures)
    return total


class _progress_bar:  # noqa: N801 - used as a context manager, like open()
    """A files-done bar on a terminal; nothing when stderr is not a terminal."""

    def __enter__(self) -> Any:
        from tqdm.auto import tqdm

        self._bar = tqdm(unit=" files", disable=not sys.stderr.isatty(), leave=False)
        return self

    def __call__(self, source: str) -> None:
        self._bar.update(1)
        self._bar.set_postfix_str(Path(source).name[-40:], refresh=False)

    def __exit__(self, *_: object) -> None:
        self._bar.close()


def _cancel(app: Any, job_id: int) -> None:
    """Withdraw a job this command queued; one resumed from a stop stays."""
    from sqlalchemy.orm import Session

    from search.catalog.models import Job

    with Session(app.engine) as session:
        job = session.get(Job, job_id)
        if job is not None and not job.attempts:
            session.delete(job)
            session.commit()


def _print_summary(summary: Any) -> None:
    for failure in summary.failures:
        print(f"failed: {failure['path']}: {failure['error']}", file=sys.stderr)
    print(summary.one_line())


def run_worker(args: argparse.Namespace) -> int:
    from ingest import jobs
    from search.errors import InvalidInputError

    app = open_app(args, role="worker")
    if args.concurrency < 1:
        raise InvalidInputError("--concurrency must be at least 1")
    if args.concurrency > 1 and (
        app.settings.embedded_catalog or app.settings.embedded_store
    ):
        app.close()
        raise InvalidInputError(
            "--concurrency above 1 needs the servers (DATABASE_URL for PostgreSQL "
            "and QDRANT_URL for Qdrant); the embedded default runs one job at a time"
        )
    stop = threading.Event()
    # SIGTERM (docker stop, a service manager): no new jobs; a job under way
    # ends after its current file and goes back to the queue.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if app.settings.embedded_store:
            app.store  # noqa: B018 - take the store now, so that ingest hands jobs over
        print(
            f"semsearch worker {jobs.worker_name()} waiting for jobs"
            + (f" ({args.concurrency} at once)" if args.concurrency > 1 else ""),
            file=sys.stderr,
        )
        if args.once:
            return _run_due_jobs(app)
        _run_slots(app, stop, args.concurrency)
    except KeyboardInterrupt:
        stop.set()
    finally:
        app.close()
    return 0


def _run_slots(app: Any, stop: threading.Event, concurrency: int) -> None:
    """``concurrency`` queue loops in threads sharing the app, until ``stop``."""
    from ingest import jobs

    if concurrency == 1:
        jobs.run_queued(app, stop)
        return
    loops = [
        threading.Thread(
            target=jobs.run_queued,
            args=(app, stop),
            kwargs={"worker": jobs.worker_name(slot)},
            name=f"semsearch-worker-{slot}",
            daemon=True,
        )
        for slot in range(concurrency)
    ]
    for loop in loops:
        loop.start()
    try:
        while any(loop.is_alive() for loop in loops):
            stop.wait(0.5)
    finally:
        stop.set()
        for loop in loops:
            loop.join()


def _run_due_jobs(app: Any) -> int:
    """``worker --once``: run the jobs that are due; a failed one blocks no other.

    Exit code 1 if any failed; a server that is down ends the run at once.
    """
    from ingest import jobs
    from search.errors import SemsearchError

    failed = 0
    while (job := jobs.claim(app)) is not None:
        try:
            jobs.run_job(app, job)
        except jobs.JobStoppedError as exc:
            raise SemsearchError(f"{exc}; {_what_now(exc)}") from None
        except SemsearchError as exc:
            print(f"semsearch: job {job.id} failed: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
