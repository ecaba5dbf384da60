"""Catalog reads and writes, in the glossary's verbs: get_, list_, create_.

Every function takes a SQLAlchemy ``Session`` and leaves committing to the
caller, except where its docstring says otherwise, so that a caller can make
several changes visible at once (the switch to a new document version).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from search.access import Access
from search.catalog.models import (
    CachedEmbedding,
    Chunk,
    Document,
    DocumentGroup,
    DocumentStatus,
    Job,
    JobStatus,
    utcnow,
)

_DOCUMENT_NAMESPACE = uuid.UUID("6f1c3e0a-6a53-4e0b-9f0e-5e6d1c2b7a10")


def document_id_for(source: str) -> str:
    """A stable id for a source path: the same file always gets the same id."""
    return str(uuid.uuid5(_DOCUMENT_NAMESPACE, source))


def readable(access: Access) -> ColumnElement[bool]:
    """The documents ``access`` may read, as a WHERE clause (search.access)."""
    if access.everything:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if access.groups:
        clauses.append(
            exists().where(
                DocumentGroup.document_id == Document.id,
                DocumentGroup.name.in_(sorted(access.groups)),
            )
        )
    if access.ungrouped:
        clauses.append(~exists().where(DocumentGroup.document_id == Document.id))
    return or_(*clauses) if clauses else false()


def get_document(
    session: Session, document_id: str, access: Access | None = None
) -> Document | None:
    """The document, or None; with ``access``, None too where it may not read it."""
    document = session.get(Document, document_id)
    readable = access is None or (
        document is not None and access.allows(document.access_groups)
    )
    return document if readable else None


def get_documents(
    session: Session, ids: Iterable[str], for_update: bool = False
) -> dict[str, Document]:
    """Documents by id; ``for_update`` locks their rows (see :func:`lock_documents`)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(Document).where(Document.id.in_(wanted))
    if for_update:
        query = query.order_by(Document.id).with_for_update()
    return {d.id: d for d in session.scalars(query)}


def lock_documents(session: Session, ids: Iterable[str]) -> None:
    """Lock document rows to the end of the transaction, in id order.

    Transactions that update several documents (activating a batch,
    resetting read counts) take their row locks in one order, so that two
    workers on files they share wait for each other instead of deadlocking.
    PostgreSQL only: SQLite locks the whole database for a writer.
    """
    wanted = sorted(set(ids))
    if wanted and session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Document.id)
            .where(Document.id.in_(wanted))
            .order_by(Document.id)
            .with_for_update()
        )


def list_documents(
    session: Session,
    access: Access,
    status: str | None = None,
    under: str | None = None,
) -> list[Document]:
    query = select(Document).where(readable(access)).order_by(Document.source_path)
    if status is not None:
        query = query.where(Document.status == status)
    if under is not None:
        query = query.where(Document.source_path.startswith(under, autoescape=True))
    return list(session.scalars(query))


def count_documents(session: Session, access: Access) -> dict[str, int]:
    rows = session.execute(
        select(Document.status, func.count())
        .where(readable(access))
        .group_by(Document.status)
    )
    return {str(status): int(count) for status, count in rows}


def count_active_chunks(session: Session, access: Access) -> int:
    query = (
        select(func.count())
        .select_from(Chunk)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.version == Document.active_version, readable(access))
    )
    return int(session.scalar(query) or 0)


def create_failed_document(
    session: Session, source: str, file_type: str, error: str
) -> Document:
    """Record (or update) a document that could not be read, with its reason.

    An already indexed version stays active and searchable: a failure to read
    the file now does not lose what was indexed before.
    """
    document_id = document_id_for(source)
    add_document_if_missing(
        session, document_id, source, file_type, DocumentStatus.FAILED
    )
    document = get_document(session, document_id)
    assert document is not None
    document.status = DocumentStatus.FAILED
    document.error = error
    return document


def add_document_if_missing(
    session: Session,
    document_id: str,
    source: str,
    file_type: str,
    status: str = DocumentStatus.PENDING,
    attempts: int = 0,
) -> None:
    """Insert a document row unless one has that id (added meanwhile by another
    worker, on a file two jobs share: the first insert wins, nothing fails)."""
    statement = _dialect_insert(session, Document).on_conflict_do_nothing(
        index_elements=[Document.id]
    )
    now = utcnow()
    session.execute(
        statement,
        [
            {
                "id": document_id,
                "source_path": source,
                "file_type": file_type,
                "status": status,
                "attempts": attempts,
                "tags": [],
                "chunk_count": 0,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def add_chunks(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add chunk rows (with their document_id and version) in one statement.

    Rows of a version count once the catalog makes that version active. A row
    already there for the same chunk (an interrupted run's, or another
    worker's writing the same version at once) is replaced.
    """
    if not rows:
        return
    statement = _dialect_insert(session, Chunk)
    replaced = {
        column.name: statement.excluded[column.name]
        for column in Chunk.__table__.columns
        if column.name not in ("id", "document_id", "version", "ordinal")
    }
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Chunk.document_id, Chunk.version, Chunk.ordinal],
            set_=replaced,
        ),
        list(rows),
    )


def _dialect_insert(session: Session, table: Any) -> Any:
    """INSERT with ON CONFLICT, in the catalog's dialect."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def delete_chunks(
    session: Session,
    document_id: str,
    version: str | None = None,
    keep_version: str | None = None,
) -> None:
    """Delete chunk rows of a document: of ``version``, or all but ``keep_version``."""
    query = delete(Chunk).where(Chunk.document_id == document_id)
    if version is not None:
        query = query.where(Chunk.version == version)
    if keep_version is not None:
        query = query.where(Chunk.version != keep_version)
    session.execute(query)


def get_cached_embeddings(
    session: Session, model: str, text_hashes: Iterable[str]
) -> dict[str, npt.NDArray[np.float32]]:
    wanted = list(set(text_hashes))
    found: dict[str, npt.NDArray[np.float32]] = {}
    # Bounded IN lists keep every backend's parameter limit happy.
    for start in range(0, len(wanted), 500):
        query = select(CachedEmbedding.text_hash, CachedEmbedding.vector).where(
            CachedEmbedding.model == model,
            CachedEmbedding.text_hash.in_(wanted[start : start + 500]),
        )
        for text_hash, blob in session.execute(query):
            found[text_hash] = np.frombuffer(blob, dtype=np.float32)
    return found


def put_cached_embeddings(
    session: Session, model: str, vectors: Mapping[str, npt.NDArray[np.float32]]
) -> None:
    """Store embeddings by text hash; hashes already cached are left alone."""
    if not vectors:
        return
    rows = [
        {
            "model": model,
            "text_hash": h,
            "vector": np.asarray(v, dtype=np.float32).tobytes(),
            "created_at": utcnow(),
        }
        for h, v in vectors.items()
    ]
    statement = _dialect_insert(session, CachedEmbedding).on_conflict_do_nothing()
    session.execute(statement, rows)


def create_job(session: Session, kind: str, params: dict[str, Any]) -> Job:
    job = Job(kind=kind, params=params, status=JobStatus.QUEUED)
    session.add(job)
    session.flush()
    return job


def get_retry_job(session: Session, kind: str, params: dict[str, Any]) -> Job | None:
    """The oldest job of ``kind`` and ``params`` queued again after a stopped run.

    A rerun of the same command resumes it instead of queueing a twin. Jobs
    queued but never begun are left to whoever queued them.
    """
    query = (
        select(Job)
        .where(Job.kind == kind, Job.status == JobStatus.QUEUED, Job.attempts > 0)
        .order_by(Job.id)
    )
    # Compared here: JSON equality differs between SQLite, json and jsonb.
    return next((job for job in session.scalars(query) if job.params == params), None)


#: How long a claimed job is a worker's without a heartbeat (it renews it).
DEFAULT_LEASE_S = 60.0


@dataclass
class Lease:
    """A worker's hold on a running job, as the worker sees it.

    ``lost`` is set once a renewal or a fence (:func:`hold_lease`) finds the
    job no longer the worker's: its run must stop and record nothing.
    """

    job_id: int
    worker: str
    lease_s: float = DEFAULT_LEASE_S
    lost: threading.Event = field(default_factory=threading.Event, compare=False)


def claim_job(
    session: Session, job_id: int, worker: str, lease_s: float = DEFAULT_LEASE_S
) -> Job | None:
    """Take job ``job_id`` if it is still queued, due or not; commits the claim.

    The claim is a conditional update, so of two workers racing for one job
    exactly one gets it, on SQLite and PostgreSQL alike. It counts as an
    attempt (``Job.attempts``) and holds a lease of ``lease_s`` seconds.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(**_taken(worker, now, lease_s))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Job, job_id, populate_existing=True)


def claim_next_job(
    session: Session,
    worker: str,
    now: datetime | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> Job | None:
    """Take the oldest claimable job; commits the claim.

    Claimable: queued and due (a job queued again after a server was down
    waits until its ``not_before``), or running with an expired lease (its
    worker died). On PostgreSQL the row is locked with ``FOR UPDATE SKIP
    LOCKED``, so that workers claiming at once take different jobs without
    waiting on each other; SQLite serializes writers, and a conditional
    update decides each race.
    """
    now = now or utcnow()
    claimable = or_(
        (Job.status == JobStatus.QUEUED)
        & or_(Job.not_before.is_(None), Job.not_before <= now),
        (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now),
    )
    if session.get_bind().dialect.name == "postgresql":
        job = session.scalar(
            select(Job)
            .where(claimable)
            .order_by(Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if job is None:
            session.rollback()
            return None
        for key, value in _taken(worker, now, lease_s).items():
            setattr(job, key, value)
        session.commit()
        return job
    while True:
        candidate = session.scalar(
            select(Job.id).where(claimable).order_by(Job.id).limit(1)
        )
        if candidate is None:
            return None
        claimed = session.execute(
            update(Job)
            .where(Job.id == candidate, claimable)
            .values(**_taken(worker, now, lease_s))
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(Job, candidate, populate_existing=True)


def _taken(worker: str, now: datetime, lease_s: float) -> dict[str, Any]:
    return {
        "status": JobStatus.RUNNING,
        "worker": worker,
        "started_at": now,
        "attempts": Job.attempts + 1,
        "lease_expires_at": now + timedelta(seconds=lease_s),
    }


def renew_lease(
    session: Session, job_id: int, worker: str, lease_s: float = DEFAULT_LEASE_S
) -> bool:
    """Extend ``worker``'s lease on a running job; commits. False once it is
    not theirs, or has expired (see :func:`hold_lease`)."""
    held = hold_lease(session, job_id, worker, lease_s)
    session.commit()
    return held


def hold_lease(
    session: Session, job_id: int, worker: str, lease_s: float = DEFAULT_LEASE_S
) -> bool:
    """Extend a lease that is ``worker``'s and unexpired, in the open transaction.

    The fence of a write that must happen only while the job is the
    caller's: run first in that write's transaction, it locks the job's row
    until the commit (PostgreSQL; SQLite takes the write lock), so that no
    claim can take the job over in between. An expired lease is never
    revived: once expired, the job's work in progress may be swept
    (:func:`live_writers`), and its worker must stop.
    """
    now = utcnow()
    renewed = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.worker == worker,
            Job.status == JobStatus.RUNNING,
            Job.lease_expires_at > now,
        )
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def live_writers(grace_s: float, now: datetime | None = None) -> Select[int]:
    """The ids of jobs running on a lease that expired less than ``grace_s`` ago.

    Chunk rows these jobs wrote (``Chunk.writer``) are work in progress that
    other runs must not sweep. The grace covers clocks that differ between
    the workers' machines: up to ``grace_s`` apart, a job whose own clock
    still reads its lease as live is counted live everywhere.
    """
    since = (now or utcnow()) - timedelta(seconds=grace_s)
    return select(Job.id).where(
        Job.status == JobStatus.RUNNING, Job.lease_expires_at >= since
    )


def requeue_job(
    session: Session, job: Job, error: str, not_before: datetime | None
) -> None:
    """Put a stopped job back in the queue, to be claimed from ``not_before`` on.

    ``error`` (why it stopped) stays visible in ``semsearch jobs`` until a
    later run finishes it.
    """
    job.status = JobStatus.QUEUED
    job.worker = None
    job.error = error
    job.not_before = not_before
    job.lease_expires_at = None


def release_job(session: Session, job: Job) -> None:
    """Give a job back to the queue unfinished (its worker is shutting down).

    Not a failed attempt: the count goes back down, and it is due at once.
    """
    job.status = JobStatus.QUEUED
    job.worker = None
    job.not_before = None
    job.lease_expires_at = None
    job.attempts = max(0, job.attempts - 1)


def finish_job(
    session: Session,
    job: Job,
    summary: dict[str, Any] | None,
    error: str | None = None,
    finished_at: datetime | None = None,
) -> None:
    job.status = JobStatus.FAILED if error else JobStatus.DONE
    job.summary = summary
    job.error = error
    job.not_before = None
    job.lease_expires_at = None
    job.finished_at = finished_at or utcnow()


def get_chunk_text_hash(session: Session, document_id: str, ordinal: int) -> str | None:
    """The text hash of a chunk of the document's active version."""
    query = (
        select(Chunk.text_hash)
        .join(Document, Document.id == Chunk.document_id)
        .where(
            Chunk.document_id == document_id,
            Chunk.ordinal == ordinal,
            Chunk.version == Document.active_version,
        )
    )
    return session.scalar(query)


@dataclass(frozen=True)
class Facets:
    """What the indexed documents hold, for filter choices: values with counts."""

    file_types: dict[str, int]
    tags: dict[str, int]
    earliest: datetime | None
    latest: datetime | None


def get_facets(session: Session, access: Access) -> Facets:
    """File types and tags of the indexed documents ``access`` may read."""
    indexed = (Document.status == DocumentStatus.INDEXED) & readable(access)
    types = session.execute(
        select(Document.file_type, func.count())
        .where(indexed)
        .group_by(Document.file_type)
    )
    tags: Counter[str] = Counter()
    for document_tags in session.scalars(select(Document.tags).where(indexed)):
        tags.update(set(document_tags or ()))
    earliest, latest = session.execute(
        select(func.min(Document.modified_at), func.max(Document.modified_at)).where(
            indexed
        )
    ).one()
    return Facets(
        file_types={str(t): int(n) for t, n in types if t},
        tags=dict(sorted(tags.items(), key=lambda item: (-item[1], item[0]))),
        earliest=earliest,
        latest=latest,
    )


def get_last_job(session: Session, kind: str = "ingest") -> Job | None:
    """The most recently finished job of ``kind``."""
    query = (
        select(Job)
        .where(Job.kind == kind, Job.finished_at.is_not(None))
        .order_by(Job.finished_at.desc(), Job.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def delete_document(session: Session, document_id: str) -> bool:
    """Delete a document and its chunk rows; whether it was there."""
    document = get_document(session, document_id)
    if document is None:
        return False
    session.delete(document)
    return True


def get_average_terms(session: Session) -> float | None:
    """The mean keyword-term count of active chunks (BM25's avgdl), if known."""
    query = (
        select(func.avg(Chunk.term_count))
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.version == Document.active_version, Chunk.term_count.is_not(None))
    )
    value = session.scalar(query)
    return float(value) if value is not None else None


def list_jobs(
    session: Session,
    status: str | None = None,
    limit: int | None = 50,
    kind: str | None = None,
) -> list[Job]:
    """The newest jobs first, of one status and kind if given; all for no limit."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query))
