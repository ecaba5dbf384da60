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
        "Unchanged files cost nothing; changed files are replaced whole.",
    )
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
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
        "--once", action="store_true", help="stop when the queue is empty"
    )
    worker.set_defaults(handler=run_worker)


def run_ingest(args: argparse.Namespace) -> int:
    from ingest import jobs
    from ingest.pipeline import IngestOptions
    from ingest.summary import IngestSummary
    from search.errors import StoreLockedError

    from ingest.access_rules import load_rules
    from search.access import check_groups

    app = open_app(args)
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
    job_id = jobs.enqueue(app, jobs.ingest_params(args.paths, options))
    if args.queue:
        app.close()
        print(f"queued job {job_id}")
        return 0
    try:
        try:
            app.store  # noqa: B018 - opening the store tells who may run the job
        except StoreLockedError:
            owner = app.read_owner() or {}
            if owner.get("role") not in ("worker", "ui"):
                _cancel(app, job_id)
                raise
            print(
                f"semsearch: the store is held by {owner['role']} process "
                f"{owner.get('pid')}; job {job_id} is queued for it, waiting ...",
                file=sys.stderr,
            )
            summary = IngestSummary.from_dict(jobs.wait_for(app, job_id).summary or {})
        else:
            with _progress_bar() as bar:
                summary = jobs.run_claimed(app, job_id, progress=bar)
    finally:
        app.close()

    if args.json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary)
    return 1 if summary.failed else 0


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
    from sqlalchemy.orm import Session

    from search.catalog.models import Job

    with Session(app.engine) as session:
        job = session.get(Job, job_id)
        if job is not None:
            session.delete(job)
            session.commit()


def _print_summary(summary: Any) -> None:
    for failure in summary.failures:
        print(f"failed: {failure['path']}: {failure['error']}", file=sys.stderr)
    print(summary.one_line())


def run_worker(args: argparse.Namespace) -> int:
    from ingest import jobs

    app = open_app(args, role="worker")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        app.store  # noqa: B018 - take the store now, so that ingest hands jobs over
        print(
            f"semsearch worker {jobs.worker_name()} waiting for jobs", file=sys.stderr
        )
        if args.once:
            while (job := jobs.claim(app)) is not None:
                jobs.run_job(app, job)
        else:
            jobs.run_queued(app, stop)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0
