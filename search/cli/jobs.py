"""``semsearch jobs``: the ingest jobs in the catalog, newest first, and failures.

A job stopped by a server that was down shows its attempts and, while it waits
in the queue, when its next attempt may begin.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from search.cli.common import (
    access_of,
    add_principal_arguments,
    open_app,
    print_json,
)

STATUSES = ("queued", "running", "done", "failed")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "jobs",
        help="list ingest jobs and failed documents",
        description="List ingest jobs, newest first, with their outcome; "
        "--failed lists the documents that could not be read.",
    )
    parser.add_argument("--status", choices=STATUSES, help="only jobs in this state")
    parser.add_argument("--limit", type=int, default=20, help="jobs to list (20)")
    parser.add_argument(
        "--failed", action="store_true", help="list failed documents and their errors"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_principal_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from search.catalog import repository as repo
    from search.catalog.models import DocumentStatus
    from search.errors import InvalidInputError

    if args.limit < 1:
        raise InvalidInputError("--limit must be at least 1")
    app = open_app(args)
    rows: list[dict[str, Any]]
    try:
        _, access = access_of(args, app.settings)
        with Session(app.engine) as session:
            if args.failed:
                rows = [
                    {"path": d.source_path, "error": d.error, "updated": d.updated_at}
                    for d in repo.list_documents(
                        session, access, status=DocumentStatus.FAILED
                    )
                ]
            else:
                rows = [
                    _job_row(job, app.settings.retry_attempts)
                    for job in repo.list_jobs(session, args.status, args.limit)
                ]
    finally:
        app.close()

    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no failed documents" if args.failed else "no jobs")
        return 0
    for row in rows:
        if args.failed:
            print(f"{row['path']}: {row['error']}")
        else:
            print(_job_line(row))
    return 0


def _job_line(row: dict[str, Any]) -> str:
    outcome = row["error"] or row["summary_line"] or ""
    if row["next_attempt"] is not None:
        wait = (row["next_attempt"] - datetime.now(UTC)).total_seconds()
        when = f"next attempt in {wait:.0f} s" if wait >= 1 else "due to run again"
        outcome = f"{when}; {outcome}"
    return (
        f"{row['id']:>5}  {row['status']:8} {row['created']:%Y-%m-%d %H:%M}  "
        f"{row['attempts']}/{row['max_attempts']}  "
        f"{', '.join(row['paths'])}  {outcome}".rstrip()
    )


def _job_row(job: Any, max_attempts: int) -> dict[str, Any]:
    """A job as the listing shows it; ``next_attempt`` only for a queued retry."""
    from ingest.jobs import REINDEX
    from ingest.reindex import ReindexSummary
    from ingest.summary import IngestSummary

    kind = ReindexSummary if job.kind == REINDEX else IngestSummary
    summary = kind.from_dict(job.summary) if job.summary else None
    waiting = job.status == "queued" and job.not_before is not None
    paths = list(job.params.get("paths", []))
    if job.kind == REINDEX:
        paths = [f"reindex to {job.params.get('model')}"]
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "paths": paths,
        "worker": job.worker,
        "created": job.created_at,
        "finished": job.finished_at,
        "attempts": job.attempts,
        "max_attempts": max_attempts,
        "next_attempt": _as_utc(job.not_before) if waiting else None,
        "error": job.error,
        "summary": job.summary,
        "summary_line": summary.one_line() if summary else None,
    }


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
