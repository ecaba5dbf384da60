"""Batches of chunks on their way to the index: encoded, then written.

The ingest pipeline (ingest.pipeline) reads and chunks files into batches;
:class:`BatchWriter` takes each batch through two steps, run in threads of
their own (ingest.stages) so that reading, encoding and writing overlap:

- :meth:`BatchWriter.encode`: embeddings from the cache or the encoder (one
  call for the whole batch, sorted by token count across its documents), and
  the points with their BM25 sparse vectors;
- :meth:`BatchWriter.write`: chunk rows, then points, then the documents the
  batch completes made active, then their old versions deleted (the order of
  ingest.consistency, which lets the next run clear what a crash left).

Batches are written in the order they were read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ingest.consistency import crash_point, delete_inactive_versions, point_id
from ingest.documents import LoadedDocument
from ingest.summary import IngestSummary
from search import bm25
from search.active_index import ActiveIndex, read_active
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Document, DocumentStatus, utcnow
from search.catalog.repository import Lease
from search.embedding_cache import embed_cached
from search.errors import IndexSwitchedError, LeaseLostError
from search.stores.base import Point

if TYPE_CHECKING:
    from search.encoder import Encoder

logger = logging.getLogger(__name__)


@dataclass
class OpenDocument:
    """A document whose chunks are being encoded and written."""

    loaded: LoadedDocument
    document_id: str
    source: str
    version: str
    root: str | None = None
    tags: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    chunk_count: int = 0
    known: bool = False
    # Catalogued before this run: an interrupted run may have left it rows.
    had_row: bool = True


@dataclass
class PendingChunk:
    document: OpenDocument
    document_id: str
    version: str
    ordinal: int
    text: str
    text_hash: str
    row: dict[str, Any]
    payload: dict[str, Any]
    terms: list[str]


@dataclass
class Batch:
    """Chunks to write, then documents to make active or to discard.

    ``activate`` are documents whose last chunks are in this batch or an
    earlier one; ``discard`` are documents that failed midway, whose chunks
    written so far are deleted (unless their version is active).
    """

    chunks: list[PendingChunk] = field(default_factory=list)
    activate: list[OpenDocument] = field(default_factory=list)
    discard: list[str] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)


class BatchWriter:
    """Encodes and writes one ingest run's batches, with the run's lease.

    ``encode`` and ``write`` are each called from one thread, in batch order;
    they share nothing but the summary, whose counts each updates apart.
    """

    def __init__(
        self,
        app: App,
        index: ActiveIndex,
        encoder: Callable[[], Encoder],
        summary: IngestSummary,
        lease: Lease | None = None,
    ) -> None:
        """``encoder`` (of ``index``'s model) is called when a batch first
        needs it."""
        self.app = app
        self.index = index
        self._encoder = encoder
        self.summary = summary
        self.lease = lease
        self._average_terms: float | None = None
        self._collection_ready = False

    @property
    def job_id(self) -> int | None:
        return self.lease.job_id if self.lease is not None else None

    # -- encoding ---------------------------------------------------------

    def encode(self, batch: Batch) -> Batch:
        """The batch with its points: embeddings from the cache, else encoded."""
        if not batch.chunks:
            return batch
        chunks = batch.chunks
        vectors, encoded = embed_cached(
            self.app.engine,
            self._encoder(),
            [c.text_hash for c in chunks],
            [c.text for c in chunks],
        )
        self.summary.chunks_reused += len(chunks) - encoded
        self.summary.chunks_encoded += encoded
        average_terms = self._average_terms_of(chunks)
        batch.points = [
            Point(
                id=point_id(c.document_id, c.version, c.ordinal),
                vector=vectors[c.text_hash],
                payload=c.payload,
                sparse=bm25.document_vector(c.terms, average_terms),
            )
            for c in chunks
        ]
        return batch

    def _average_terms_of(self, chunks: list[PendingChunk]) -> float:
        """BM25's average chunk length: the index's, or the first batch's.

        Read from the catalog's active chunks once per run (an aggregate over
        every chunk: per batch it would grow with the index), so each run
        follows the collection as it grows; weights already written keep the
        average of their time, which moves little once there are many chunks.
        """
        if self._average_terms is None:
            with Session(self.app.engine) as session:
                known = repo.get_average_terms(session)
            if known is None:
                terms = sum(len(c.terms) for c in chunks)
                known = max(1.0, terms / max(len(chunks), 1))
            self._average_terms = known
        return self._average_terms

    # -- writing ----------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Rows, points, activation, old versions deleted; discards last.

        The rows are committed before the points are upserted: a crash in
        between leaves rows naming points that may exist, which the next
        run's sweep deletes, never points that nothing in the catalog names.
        """
        if batch.chunks:
            self._add_rows(batch.chunks)
            crash_point("rows-written")
            if not self._collection_ready:
                self.app.ensure_collection(self.index, self._encoder())
                self._collection_ready = True
            self.app.store.upsert(self.index.collection, batch.points)
            crash_point("points-written")
        if batch.activate:
            self._activate(batch.activate)
        if batch.discard:
            # Their rows were written before their points, so they name every
            # point written: points first, then rows (ingest.consistency).
            delete_inactive_versions(self.app, batch.discard, self.job_id)

    def _add_rows(self, chunks: list[PendingChunk]) -> None:
        """Commit the chunk rows of a batch; they count once their version is
        active, and a huge document never holds all of its rows in memory."""
        # Rows an interrupted run left for these chunks, or another worker's
        # writing the same version now, are replaced (repository.add_chunks).
        with Session(self.app.engine) as session:
            writer = self.job_id
            rows = [
                {
                    "document_id": c.document_id,
                    "version": c.version,
                    "writer": writer,
                    **c.row,
                }
                for c in chunks
            ]
            repo.add_chunks(session, rows)
            session.commit()

    def _activate(self, documents: list[OpenDocument]) -> None:
        """Switch each document to its new version, then delete the old one.

        One commit covers the batch: each document switches atomically, and
        committing per batch instead of per document keeps small files cheap.
        The old versions' rows stay until their points are deleted (see
        ingest.consistency), one store call for the whole batch. With a lease,
        the commit is fenced by it: the job's row stays locked from the check
        to the commit, so no other worker can take the job over in between
        and sweep this batch's points (repository.hold_lease). It is also
        fenced by the active index: once a reindex has switched to another
        collection, nothing written to this one may become active.
        """
        with Session(self.app.engine) as session:
            hold_lease(session, self.lease)
            active = read_active(session, lock=True)
            if active is not None and active.collection != self.index.collection:
                session.rollback()
                raise IndexSwitchedError(
                    f"the index switched to model {active.model} during this run"
                )
            rows = repo.get_documents(
                session, (d.document_id for d in documents), for_update=True
            )
            for document in documents:
                row = rows.get(document.document_id)
                if row is None:
                    row = Document(
                        id=document.document_id,
                        source_path=document.source,
                        file_type=document.loaded.file_type,
                        status=DocumentStatus.PENDING,
                    )
                    session.add(row)
                _fill_row(row, document)
            session.commit()
        crash_point("activated")

        for document in documents:
            self.summary.chunks += document.chunk_count
            if document.known:
                self.summary.changed += 1
            else:
                self.summary.new += 1
        delete_inactive_versions(
            self.app, [d.document_id for d in documents], self.job_id
        )


def hold_lease(session: Session, lease: Lease | None) -> None:
    """Fence the open transaction's writes by the run's lease (if it has one):
    extend it with the job's row locked, or raise LeaseLostError once the
    job is no longer the run's (repository.hold_lease)."""
    if lease is not None and not repo.hold_lease(
        session, lease.job_id, lease.worker, lease.lease_s
    ):
        session.rollback()
        lease.lost.set()
        check_lease(lease)


def check_lease(lease: Lease | None) -> None:
    """Raise :class:`LeaseLostError` once the job is no longer the run's."""
    if lease is not None and lease.lost.is_set():
        raise LeaseLostError(
            f"job {lease.job_id} is no longer {lease.worker}'s (its lease "
            "expired); the worker that took it over finishes it"
        )


def _fill_row(row: Document, document: OpenDocument) -> None:
    loaded = document.loaded
    row.title = loaded.title
    row.file_type = loaded.file_type
    row.size_bytes = loaded.size_bytes
    row.modified_at = loaded.modified_at
    row.content_hash = loaded.content_hash
    row.author = loaded.author
    row.tags = document.tags
    row.access_groups = document.groups
    row.root_path = document.root
    row.status = DocumentStatus.INDEXED
    row.error = None
    row.active_version = document.version
    row.chunk_count = document.chunk_count
    row.indexed_at = utcnow()
    row.attempts = 0
