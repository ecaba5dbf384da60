"""How the catalog and the vector store are kept in agreement, and checked.

The catalog is the truth; the store is an index of it. A point's id derives
from its chunk row (:func:`point_id`), and every write leaves a catalog trace
of the points a crash could strand, so that a rerun mends any crash:

- a version's chunk rows are committed before its points are upserted, and
  an old version's rows are deleted only after its points: chunk rows of a
  version that is not the document's active one name points that may exist;
- a removal first marks the document (status ``removing``, no active version,
  so search drops it at once), then deletes its points, then its row.

:func:`sweep_leftovers`, at the start of every ingest run, deletes the points
that those traces name, then the traces. Several workers may run at once:
each chunk row names the job that wrote it, and the rows of a job that holds
a live lease are its work in progress, which no other run sweeps.
:func:`check` compares the two sides point by point; :func:`repair` deletes
what no catalog row knows and writes again, from the files, what the catalog
holds and the store lacks.

Limits: ``check`` holds every point id of the index in memory (about 150 bytes
a chunk: some 150 MB for a million chunks) and reads every payload once.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    delete,
    exists,
    false,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from search.access import UNGROUPED, Access
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Chunk, Document, DocumentStatus, Job, JobStatus
from search.errors import SemsearchError
from search.stores.base import Filter, MatchAny

logger = logging.getLogger(__name__)

T = TypeVar("T")

_POINT_NAMESPACE = uuid.UUID("0b7a3f52-2d5e-4c1a-8d57-91c0e3f4a6b2")
#: The status of a document whose removal has begun: invisible to search, its
#: points and row about to go (the next run finishes a removal cut short).
REMOVING = DocumentStatus.REMOVING
# Ids per store delete call, rows per IN list: bounded requests on every backend.
_DELETE_BATCH = 4096
_IN_BATCH = 500

#: Places between two writes where a test may kill an ingest (SIGKILL):
#: set ``SEMSEARCH_TEST_CRASH_AT=<point>[:<n>]`` to die the n-th time (the
#: first by default) a run passes it, ``SEMSEARCH_TEST_CRASH_ON=<file name>``
#: to die when a run begins reading that file, ``SEMSEARCH_TEST_PAUSE_S`` to
#: sleep at every point, so that a kill at a random time lands inside the
#: windows. Test hooks only: never set them in production.
CRASH_POINTS = (
    "rows-written",  # chunk rows committed, their points not yet upserted
    "points-written",  # points upserted, their version not yet active
    "activated",  # new versions active, the old points not yet deleted
    "stale-points-deleted",  # old points deleted, their rows not yet
    "removal-marked",  # documents marked for removal, their points still there
    "removal-points-deleted",  # their points deleted, their rows not yet
)
_passed: Counter[str] = Counter()


class IngestRunningError(SemsearchError):
    """Repair was refused: ingest jobs are running on the shared catalog."""


def point_id(document_id: str, version: str, ordinal: int) -> str:
    """Deterministic point id of one chunk of one document version."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{document_id}:{version}:{ordinal}"))


def crash_point(name: str) -> None:
    """A test hook between two writes (see CRASH_POINTS); nothing when unset."""
    pause = os.environ.get("SEMSEARCH_TEST_PAUSE_S")
    if pause:
        time.sleep(float(pause))
    wanted = os.environ.get("SEMSEARCH_TEST_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point == name:
        _passed[name] += 1
        if _passed[name] >= int(nth or "1"):
            _kill()


def crash_on_reading(path: Path) -> None:
    """A test hook: a file that kills the process whenever it is read."""
    if os.environ.get("SEMSEARCH_TEST_CRASH_ON") == path.name:
        _kill()


def _kill() -> None:
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- deleting in a crash-safe order -------------------------------------------


def delete_points(app: App, ids: Sequence[str]) -> None:
    """Delete points by id; before the collection's first upsert there are none."""
    if ids and app.store.collection_exists(app.collection):
        for batch in _batches(ids, _DELETE_BATCH):
            app.store.delete(app.collection, batch)


def delete_inactive_versions(
    app: App, document_ids: Sequence[str] | None, job_id: int | None = None
) -> int:
    """Delete the points of chunk rows of inactive versions, then those rows.

    ``document_ids`` limits it to those documents (None: all). Points go
    first, so that a crash in between leaves rows naming points already gone,
    never points that no row names. Rows that other jobs with a live lease
    are writing are kept (see :func:`inactive_chunks`; ``job_id`` is the
    caller's own job, whose rows it may delete), and so are rows of a version
    that another worker made active meanwhile, so that ``check`` finds the
    points it lacks. Returns the number of rows found inactive.
    """
    with Session(app.engine) as session:
        stale = inactive_chunks(
            session, document_ids, job_id=job_id, grace_s=app.settings.job_lease_s
        )
    if not stale:
        return 0
    delete_points(app, [point_id(*row) for row in stale])
    crash_point("stale-points-deleted")

    versions = sorted({(document_id, version) for document_id, version, _ in stale})
    active = exists().where(
        Document.id == Chunk.document_id, Document.active_version == Chunk.version
    )
    with Session(app.engine) as session:
        for batch in _batches(versions, _IN_BATCH):
            session.execute(
                delete(Chunk).where(
                    tuple_(Chunk.document_id, Chunk.version).in_(batch),
                    ~active,
                    _not_in_progress(job_id, app.settings.job_lease_s),
                )
            )
        session.commit()
    return len(stale)


def inactive_chunks(
    session: Session,
    document_ids: Sequence[str] | None = None,
    *,
    job_id: int | None = None,
    grace_s: float | None = None,
) -> list[tuple[str, str, int]]:
    """(document id, version, ordinal) of the chunk rows of inactive versions.

    With ``grace_s``, rows written by running jobs other than ``job_id`` whose
    lease is live (repository.live_writers, ``grace_s`` its clock allowance)
    are left out: they are another run's work in progress, not leftovers.
    """
    query = (
        select(Chunk.document_id, Chunk.version, Chunk.ordinal)
        .join(Document, Document.id == Chunk.document_id)
        .where(
            or_(
                Document.active_version.is_(None),
                Chunk.version != Document.active_version,
            )
        )
    )
    if grace_s is not None:
        query = query.where(_not_in_progress(job_id, grace_s))
    if document_ids is None:
        return [(d, v, o) for d, v, o in session.execute(query)]
    found: list[tuple[str, str, int]] = []
    for batch in _batches(sorted(set(document_ids)), _IN_BATCH):
        rows = session.execute(query.where(Chunk.document_id.in_(batch)))
        found.extend((d, v, o) for d, v, o in rows)
    return found


def _not_in_progress(job_id: int | None, grace_s: float) -> ColumnElement[bool]:
    """Chunk rows that no live job but ``job_id`` is writing."""
    return or_(
        Chunk.writer.is_(None),
        Chunk.writer == job_id if job_id is not None else false(),
        Chunk.writer.not_in(repo.live_writers(grace_s)),
    )


def remove_documents(app: App, document_ids: Iterable[str]) -> int:
    """Take documents out of the index; returns how many were there.

    One commit marks them ``removing`` without an active version, so they
    leave search at once; then their points go, then their rows. A crash in
    between leaves the mark, and the next ingest run finishes the removal.
    """
    wanted = sorted(set(document_ids))
    found: list[str] = []
    with Session(app.engine) as session:
        for batch in _batches(wanted, _IN_BATCH):
            found.extend(
                session.scalars(select(Document.id).where(Document.id.in_(batch)))
            )
        for batch in _batches(found, _IN_BATCH):
            repo.lock_documents(session, batch)
            session.execute(
                update(Document)
                .where(Document.id.in_(batch))
                .values(status=REMOVING, active_version=None, attempts=0)
            )
        session.commit()
    if found:
        crash_point("removal-marked")
        _finish_removals(app, found)
    return len(found)


def _finish_removals(app: App, document_ids: Sequence[str]) -> None:
    """Delete the points, then the rows, of documents marked ``removing``."""
    if app.store.collection_exists(app.collection):
        for batch in _batches(document_ids, _IN_BATCH):
            app.store.delete_by_filter(
                app.collection, Filter(must=(MatchAny("doc_id", tuple(batch)),))
            )
    crash_point("removal-points-deleted")
    with Session(app.engine) as session:
        for batch in _batches(document_ids, _IN_BATCH):
            # The chunk and group rows go with it (ON DELETE CASCADE).
            session.execute(
                delete(Document).where(
                    Document.id.in_(batch), Document.status == REMOVING
                )
            )
        session.commit()


def sweep_leftovers(app: App, job_id: int | None = None) -> None:
    """Clear what interrupted runs left: inactive versions, removals begun.

    Run at the start of each ingest, by every worker: rows of versions that
    other jobs are still writing are told apart by their writer's live lease
    and left alone (:func:`inactive_chunks`); ``job_id`` is the caller's job,
    whose own rows from an earlier, interrupted attempt are leftovers too.
    """
    rows = delete_inactive_versions(app, None, job_id)
    with Session(app.engine) as session:
        removing = list(
            session.scalars(select(Document.id).where(Document.status == REMOVING))
        )
    if removing:
        _finish_removals(app, removing)
    if rows or removing:
        logger.info(
            "Cleared what an interrupted ingest left: %d chunk rows of inactive "
            "versions (and their points), %d removals",
            rows,
            len(removing),
        )


def running_jobs(session: Session, besides: int | None = None) -> list[int]:
    """Ids of the jobs marked running, but ``besides``."""
    query = select(Job.id).where(Job.status == JobStatus.RUNNING).order_by(Job.id)
    return [job for job in session.scalars(query) if job != besides]


# -- check and repair ---------------------------------------------------------


@dataclass
class Report:
    """What ``check`` found; every kind is empty when the two sides agree.

    Point ids are grouped by document id where a repair works per document.
    ``leftovers`` are points of inactive versions that chunk rows (or a
    removal begun) still name: the next ingest run deletes them. ``orphans``
    are points no catalog row knows. ``group_drift`` (points whose payload
    groups are not the catalog's) is an access-control disagreement.
    ``running_jobs`` are ingest jobs running on a shared catalog, whose work
    in progress shows up as leftovers. After a repair, ``repaired`` counts
    what it did and ``problems`` says what it could not mend.
    """

    collection: str
    documents: int = 0
    points: int = 0
    missing: dict[str, list[str]] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    inactive_rows: dict[str, int] = field(default_factory=dict)
    miscounted: dict[str, tuple[int, int]] = field(default_factory=dict)
    group_drift: dict[str, list[str]] = field(default_factory=dict)
    removals: list[str] = field(default_factory=list)
    running_jobs: list[int] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not (
            self.missing
            or self.orphans
            or self.leftovers
            or self.inactive_rows
            or self.miscounted
            or self.group_drift
            or self.removals
        )

    def lines(self) -> list[str]:
        """One line per kind of disagreement found (none: they agree)."""
        lines = []
        if self.missing:
            count = sum(len(ids) for ids in self.missing.values())
            lines.append(
                f"missing points: {count} of {_count(self.missing, 'document')} "
                "(repair writes them again from the files)"
            )
        if self.group_drift:
            count = sum(len(ids) for ids in self.group_drift.values())
            lines.append(
                f"access drift: {count} points of "
                f"{_count(self.group_drift, 'document')} carry groups the catalog "
                "does not give (repair rewrites them)"
            )
        if self.miscounted:
            lines.append(
                f"chunk counts: {_count(self.miscounted, 'document')} with a chunk "
                "count other than their chunk rows (repair rewrites them)"
            )
        if self.orphans:
            lines.append(
                f"orphan points: {len(self.orphans)} that no catalog row knows "
                "(repair deletes them)"
            )
        if self.leftovers:
            lines.append(
                f"leftover points: {len(self.leftovers)} of inactive versions "
                "(the next ingest or repair deletes them)"
            )
        if self.inactive_rows:
            count = sum(self.inactive_rows.values())
            lines.append(
                f"inactive chunk rows: {count} of "
                f"{_count(self.inactive_rows, 'document')} "
                "(the next ingest or repair deletes them)"
            )
        if self.removals:
            lines.append(
                f"interrupted removals: {_count(self.removals, 'document')} "
                "(the next ingest or repair finishes them)"
            )
        return lines

    def as_dict(self, examples: int = 20) -> dict[str, Any]:
        """Counts of each kind, with up to ``examples`` document paths or ids."""

        def paths(document_ids: Iterable[str]) -> list[str]:
            ids = sorted(document_ids)[:examples]
            return [self.sources.get(i, i) for i in ids]

        return {
            "consistent": self.consistent,
            "collection": self.collection,
            "documents": self.documents,
            "points": self.points,
            "missing_points": sum(len(v) for v in self.missing.values()),
            "missing_in": paths(self.missing),
            "group_drift_points": sum(len(v) for v in self.group_drift.values()),
            "group_drift_in": paths(self.group_drift),
            "miscounted": paths(self.miscounted),
            "orphan_points": len(self.orphans),
            "orphan_examples": sorted(self.orphans)[:examples],
            "leftover_points": len(self.leftovers),
            "inactive_rows": sum(self.inactive_rows.values()),
            "inactive_rows_in": paths(self.inactive_rows),
            "interrupted_removals": paths(self.removals),
            "running_jobs": self.running_jobs,
            "repaired": self.repaired,
            "problems": self.problems,
        }


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


@dataclass
class _Catalog:
    """What the catalog says the store should hold."""

    expected: dict[str, str] = field(default_factory=dict)  # point id -> doc id
    traced: set[str] = field(default_factory=set)  # point ids of inactive rows
    groups: dict[str, list[str]] = field(default_factory=dict)  # doc id -> payload
    active_rows: Counter[str] = field(default_factory=Counter)
    removing: set[str] = field(default_factory=set)


def check(app: App) -> Report:
    """Compare the catalog with the store's points (see :class:`Report`)."""
    report = Report(app.collection)
    with Session(app.engine) as session:
        catalog = _read_catalog(session, report)
        if not app.settings.embedded_store:
            report.running_jobs = running_jobs(session)

    seen: set[str] = set()
    for point_id_, payload in _scroll(app):
        report.points += 1
        document_id = catalog.expected.get(point_id_)
        if document_id is not None:
            seen.add(point_id_)
            if sorted(payload.get("groups") or ()) != catalog.groups[document_id]:
                report.group_drift.setdefault(document_id, []).append(point_id_)
        elif point_id_ in catalog.traced or payload.get("doc_id") in catalog.removing:
            report.leftovers.append(point_id_)
        else:
            report.orphans.append(point_id_)

    for point_id_, document_id in catalog.expected.items():
        if point_id_ not in seen:
            report.missing.setdefault(document_id, []).append(point_id_)
    return report


def _read_catalog(session: Session, report: Report) -> _Catalog:
    catalog = _Catalog()
    documents = {d.id: d for d in repo.list_documents(session, Access.unrestricted())}
    for document in documents.values():
        report.sources[document.id] = document.source_path
        if document.status == REMOVING:
            catalog.removing.add(document.id)
            report.removals.append(document.id)
        if document.active_version is not None:
            report.documents += 1
            catalog.groups[document.id] = sorted(document.access_groups) or [UNGROUPED]

    rows = session.execute(
        select(Chunk.document_id, Chunk.version, Chunk.ordinal).execution_options(
            yield_per=10_000
        )
    )
    inactive: Counter[str] = Counter()
    for document_id, version, ordinal in rows:
        owner = documents.get(document_id)
        if owner is None:  # added since the documents were read
            continue
        key = point_id(document_id, version, ordinal)
        if owner.active_version == version:
            catalog.expected[key] = document_id
            catalog.active_rows[document_id] += 1
        else:
            catalog.traced.add(key)
            inactive[document_id] += 1
    report.inactive_rows = dict(inactive)

    for document in documents.values():
        rows_held = catalog.active_rows[document.id]
        if document.active_version is not None and document.chunk_count != rows_held:
            report.miscounted[document.id] = (document.chunk_count, rows_held)
    return catalog


def _scroll(app: App) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every point of the collection: its id and payload, a page at a time."""
    if not app.store.collection_exists(app.collection):
        return
    offset: str | None = None
    while True:
        page, offset = app.store.scroll(app.collection, limit=1024, offset=offset)
        for point in page:
            yield point.id, point.payload
        if offset is None:
            return


def repair(app: App, found: Report | None = None) -> Report:
    """Make the store match the catalog; returns the check that follows.

    Leftovers are swept and orphan points deleted. Documents with missing
    points, drifted groups or a wrong chunk count are written again from
    their files, at their active version with the catalog's tags and groups
    (the embedding cache makes that cheap); those whose file is gone are
    removed. A file changed since it was indexed cannot give back the indexed
    version: its drifted points are deleted (access fails closed) and a
    problem says to ingest it. Refused with :class:`IngestRunningError` while
    ingest jobs run on a shared (server) catalog. ``found``: a check just
    made, if the caller has one.
    """
    found = found or check(app)
    if found.running_jobs:
        jobs = ", ".join(str(j) for j in found.running_jobs)
        raise IngestRunningError(
            f"ingest jobs {jobs} are running; repair when they have finished "
            "(their work in progress would look like leftovers)"
        )
    repaired: Counter[str] = Counter()
    with Session(app.engine) as session:
        repaired["leftover_rows_deleted"] = len(inactive_chunks(session))
    repaired["removals_finished"] = len(found.removals)
    sweep_leftovers(app)
    delete_points(app, found.orphans)
    repaired["orphan_points_deleted"] = len(found.orphans)

    problems = _rewrite(app, found, repaired)
    after = check(app)
    after.repaired = {kind: n for kind, n in repaired.items() if n}
    after.problems = problems
    return after


def _rewrite(app: App, found: Report, repaired: Counter[str]) -> list[str]:
    """Write again the documents the check found short; returns the problems."""
    from ingest.pipeline import Ingestor  # the pipeline imports this module

    wanted = set(found.missing) | set(found.group_drift) | set(found.miscounted)
    gone = sorted(d for d in wanted if not Path(found.sources[d]).exists())
    repaired["documents_removed"] = remove_documents(app, gone)
    failures = Ingestor(app).rewrite(sorted(wanted - set(gone)))

    problems = []
    for document_id, reason in sorted(failures.items()):
        drifted = found.group_drift.get(document_id, [])
        delete_points(app, drifted)
        repaired["drifted_points_deleted"] += len(drifted)
        problems.append(f"{found.sources[document_id]}: {reason}")
    repaired["documents_rewritten"] = len(wanted) - len(gone) - len(failures)
    return problems
