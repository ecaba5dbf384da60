"""``semsearch ingest --retry-failed``: which jobs re-ingest the failed documents.

Each failed document is ingested again with the options of the newest job
that covered it (its tags, groups, rules and excludes), so that it gets the
access groups it would have had; one nobody's job covered is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ingest.jobs import INGEST
from search.access import Access
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import DocumentStatus, Job


@dataclass
class RetryPlan:
    """Jobs that re-ingest failed documents, and the failed ones left out.

    ``params`` holds one job per earlier job that covered failed documents:
    its options (tags, groups, rules, excludes), and those of its paths that
    hold them. A folder is walked again whole, so that path rules see each
    file as they did (unchanged files cost a hash). ``uncovered`` are failed
    documents no recorded job ingested: left alone, since ingesting them with
    no groups could publish them.
    """

    params: list[dict[str, Any]] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)


def plan_retry_failed(app: App, under: Sequence[Path] = ()) -> RetryPlan:
    """The jobs that re-ingest the failed documents (under ``under``, if given)."""
    roots = [str(p.expanduser().resolve()) for p in under]
    with Session(app.engine) as session:
        failed = [
            d.source_path
            for d in repo.list_documents(
                session, Access.unrestricted(), status=DocumentStatus.FAILED
            )
            if not roots or any(_inside(d.source_path, root) for root in roots)
        ]
        history = repo.list_jobs(session, limit=None, kind=INGEST)

    plan = RetryPlan()
    paths_of: dict[int, set[str]] = {}
    for source in failed:
        covering = _newest_covering(history, source)
        if covering is None:
            plan.uncovered.append(source)
            continue
        job, path = covering
        paths_of.setdefault(job.id, set()).add(path)
        plan.documents.append(source)
    for job in sorted((j for j in history if j.id in paths_of), key=lambda j: j.id):
        params = {**job.params, "paths": sorted(paths_of[job.id]), "prune": False}
        if params not in plan.params:
            plan.params.append(params)
    return plan


def _newest_covering(history: list[Job], source: str) -> tuple[Job, str] | None:
    """The newest job (``history`` is newest first) that named ``source`` or a
    folder above it, and that path."""
    for job in history:
        for path in job.params.get("paths", []):
            if _inside(source, str(Path(path).resolve())):
                return job, path
    return None


def _inside(source: str, root: str) -> bool:
    return source == root or source.startswith(root.rstrip("/") + "/")
