"""``semsearch jobs``: the ingest jobs in the catalog, newest first, and failures."""

from __future__ import annotations

import argparse
from typing import Any

from search.cli.common import add_principal_arguments, open_app, principal_of, print_json

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

    from search.access import AccessPolicy
    from search.catalog import repository as repo
    from search.catalog.models import DocumentStatus
    from search.errors import InvalidInputError

    if args.limit < 1:
        raise InvalidInputError("--limit must be at least 1")
    app = open_app(args)
    rows: list[dict[str, Any]]
    try:
        access = AccessPolicy.from_settings(app.settings).access(
            principal_of(args, app.settings)
        )
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
                    _job_row(job)
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
            outcome = row["error"] or row["summary_line"] or ""
            print(
                f"{row['id']:>5}  {row['status']:8} {row['created']:%Y-%m-%d %H:%M}  "
                f"{', '.join(row['paths'])}  {outcome}".rstrip()
            )
    return 0


def _job_row(job: Any) -> dict[str, Any]:
    from ingest.summary import IngestSummary

    summary = IngestSummary.from_dict(job.summary) if job.summary else None
    return {
        "id": job.id,
        "status": job.status,
        "paths": list(job.params.get("paths", [])),
        "worker": job.worker,
        "created": job.created_at,
        "finished": job.finished_at,
        "error": job.error,
        "summary": job.summary,
        "summary_line": summary.one_line() if summary else None,
    }
