"""Files in, searchable chunks out: the ingest pipeline.

For each file: hash it, and skip it when the catalog already holds that
content with the same assigned tags and groups (``--tag``, ``--group``, the
access rules file); else load it, chunk it on the model's
tokenizer, take the embeddings of unchanged chunk texts from the cache and
encode the rest, batched across documents. The new version's points are
written beside the old ones, the catalog switches the document to the new
version in one commit, and the old points are deleted after. A search joins
its hits with the catalog and drops points of inactive versions, so it never
mixes old and new chunks of one document, even after a crash midway.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ingest.access_rules import AccessRules, load_rules
from ingest.documents import Limits, LoadedDocument, LoadError
from ingest.loaders import load
from ingest.summary import IngestSummary
from ingest.walk import walk
from search import bm25, embedding_cache
from search.analysis import Analyzer
from search.app import INDEX_FORMAT, App
from search.catalog import repository as repo
from search.catalog.models import Document, DocumentStatus, utcnow
from search.chunking import chunk_spans
from search.embedding_cache import embed_cached
from search.access import UNGROUPED, Access, check_groups
from search.errors import InvalidInputError
from search.filters import path_prefixes
from search.stores.base import Filter, MatchAny, Point, VectorStore

if TYPE_CHECKING:
    from search.encoder import Encoder

logger = logging.getLogger(__name__)

_POINT_NAMESPACE = uuid.UUID("0b7a3f52-2d5e-4c1a-8d57-91c0e3f4a6b2")
# Chunks encoded together: large enough that sorting them by length pads
# little and flushes are few (256 cost 16% of ingest time in bench/ingest.py),
# small enough to bound memory on a huge document.
PENDING_CHUNKS = 1024


def point_id(document_id: str, version: str, ordinal: int) -> str:
    """Deterministic point id of one chunk of one document version."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{document_id}:{version}:{ordinal}"))


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _PendingChunk:
    document: _OpenDocument
    document_id: str
    version: str
    ordinal: int
    text: str
    text_hash: str
    row: dict[str, Any]
    payload: dict[str, Any]
    terms: list[str]


@dataclass
class _OpenDocument:
    """A document whose chunks are being encoded and written."""

    loaded: LoadedDocument
    document_id: str
    source: str
    version: str
    root: str | None = None
    assigned_groups: tuple[str, ...] = ()
    tags: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    chunk_count: int = 0
    known: bool = False
    has_row: bool = False


@dataclass
class IngestOptions:
    """What one run adds to every file: tags, access groups; what it skips.

    ``rules`` names an access rules file (ingest.access_rules); None takes
    the ``SEMSEARCH_ACCESS_RULES`` setting.
    """

    tags: Sequence[str] = ()
    groups: Sequence[str] = ()
    exclude: Sequence[str] = ()
    prune: bool = False
    rules: str | None = None


class Ingestor:
    """Runs ingest into the app's collection, with its encoder, store and catalog.

    The encoder is loaded only when a document needs encoding, so a run over
    unchanged files never pays for the model.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.collection = app.collection
        self._pending: list[_PendingChunk] = []
        self._ready: list[_OpenDocument] = []
        self._summary = IngestSummary()
        self._run_average_terms: float | None = None
        self._collection_ready = False
        self._rules = AccessRules()
        self._groups: tuple[str, ...] = ()

    @property
    def engine(self) -> Engine:
        return self.app.engine

    @property
    def store(self) -> VectorStore:
        return self.app.store

    @cached_property
    def encoder(self) -> Encoder:
        return self.app.encoder

    def version_of(
        self,
        content_hash: str,
        tags: Sequence[str] = (),
        groups: Sequence[str] = (),
    ) -> str:
        """The version a file gets: its content hash, the tags and groups the
        run assigns it, the model and chunking.

        Changing any of them makes the file a new version, written beside the
        old one and switched to in one commit (embeddings come from the cache),
        so that points never carry groups the catalog no longer gives.
        """
        s = self.app.settings
        key = (
            f"{content_hash}:{s.model}:{s.chunk_tokens}:{s.chunk_overlap}"
            f":{s.language}:index-{INDEX_FORMAT}"
            f":tags={','.join(sorted(set(tags)))}:groups={','.join(groups)}"
        )
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    @cached_property
    def limits(self) -> Limits:
        s = self.app.settings
        return Limits(max_bytes=s.max_file_bytes, max_pages=s.max_pages)

    @cached_property
    def analyzer(self) -> Analyzer:
        return Analyzer(self.app.settings.language)

    def run(
        self,
        paths: Sequence[Path],
        options: IngestOptions | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> IngestSummary:
        """Ingest ``paths`` (files or folders); see the module docstring."""
        options = options or IngestOptions()
        self._groups = check_groups(options.groups)
        rules = options.rules or self.app.settings.access_rules
        self._rules = load_rules(Path(rules) if rules else None)
        summary = self._summary = IngestSummary()
        self._run_average_terms = None
        started = time.perf_counter()
        seen: set[str] = set()
        for item in walk(paths, exclude=options.exclude):
            source = str(item.path.resolve()) if item.path.exists() else str(item.path)
            if progress:
                progress(source)
            if item.problem is not None:
                self._record_failure(source, item.path, item.problem, summary)
                continue
            seen.add(source)
            self._ingest_file(item.path, item.root, source, options, summary)
        self._flush(summary)
        if options.prune:
            self._prune(paths, seen, summary)
        summary.seconds = time.perf_counter() - started
        logger.info("Ingest finished: %s", summary.one_line())
        return summary

    def _ingest_file(
        self,
        path: Path,
        root: Path | None,
        source: str,
        options: IngestOptions,
        summary: IngestSummary,
    ) -> None:
        document_id = repo.document_id_for(source)
        try:
            content_hash = file_hash(path)
        except OSError as exc:
            self._record_failure(source, path, _os_reason(exc), summary)
            return
        assigned = tuple(
            sorted(set(self._groups) | set(self._rules.groups_for(path, root)))
        )
        version = self.version_of(content_hash, options.tags, assigned)
        with Session(self.engine) as session:
            existing = repo.get_document(session, document_id)
            if existing is not None and _unchanged(existing, version):
                summary.unchanged += 1
                return
            known = existing is not None and existing.active_version is not None
            if existing is not None:
                # Rows a crashed run left for this version would collide.
                repo.delete_chunks(session, document_id, version=version)
                session.commit()

        try:
            loaded = load(path, self.limits)
            document = _OpenDocument(
                loaded,
                document_id,
                source,
                version,
                root=str(root) if root is not None else None,
                assigned_groups=assigned,
                known=known,
                has_row=existing is not None,
            )
            self._chunk(document, options)
        except (LoadError, InvalidInputError) as exc:
            self._discard_partial(document_id, version)
            self._record_failure(source, path, _reason(exc), summary)
            return
        if not document.chunk_count:
            self._record_failure(source, path, "no text to index", summary)
            return
        self._ready.append(document)
        if len(self._pending) >= PENDING_CHUNKS:
            self._flush(summary)

    def _chunk(self, document: _OpenDocument, options: IngestOptions) -> None:
        """Chunk the document's segments into pending chunks, flushing as needed."""
        loaded = document.loaded
        try:
            own = check_groups(loaded.groups)
        except InvalidInputError as exc:
            raise InvalidInputError(f"front matter groups: {exc}") from None
        document.groups = sorted(set(document.assigned_groups) | set(own))
        document.tags = sorted(set(loaded.tags) | set(options.tags))
        date = loaded.date or loaded.modified_at
        base_payload = {
            "doc_id": document.document_id,
            "version": document.version,
            "title": loaded.title,
            "path": document.source,
            "path_prefixes": path_prefixes(document.source),
            "file_type": loaded.file_type,
            "tags": document.tags,
            "groups": document.groups or [UNGROUPED],
            "date": int(date.timestamp()),
        }
        for segment in loaded.segments:
            offsets = self.encoder.token_offsets(segment.text)
            spans = chunk_spans(segment.text, offsets, *self.app.chunk_sizes)
            for span in spans:
                text = segment.text[span.start : span.end]
                text_hash = embedding_cache.text_hash(text)
                terms = self.analyzer.terms(text)
                ordinal = document.chunk_count
                row = {
                    "ordinal": ordinal,
                    "char_start": segment.start + span.start,
                    "char_end": segment.start + span.end,
                    "page": segment.page,
                    "token_count": span.token_count,
                    "text_hash": text_hash,
                    "term_count": len(terms),
                }
                document.chunk_count += 1
                payload = {
                    **base_payload,
                    "ordinal": ordinal,
                    "text": text,
                    "page": segment.page,
                    "char_start": row["char_start"],
                    "char_end": row["char_end"],
                }
                self._pending.append(
                    _PendingChunk(
                        document,
                        document.document_id,
                        document.version,
                        ordinal,
                        text,
                        text_hash,
                        row,
                        payload,
                        terms,
                    )
                )
                # A huge document is written in bounded pieces; its new
                # version stays invisible until the catalog switches to it.
                if len(self._pending) >= 4 * PENDING_CHUNKS:
                    self._write_pending(self._summary)

    def _flush(self, summary: IngestSummary) -> None:
        self._write_pending(summary)
        if self._ready:
            self._activate(self._ready, summary)
        self._ready = []

    def _write_pending(self, summary: IngestSummary) -> None:
        """Embed the pending chunks (cache first) and upsert their points."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        vectors = self._embeddings(
            [p.text_hash for p in pending], [p.text for p in pending], summary
        )
        average_terms = self._average_terms(pending)
        points = [
            Point(
                id=point_id(p.document_id, p.version, p.ordinal),
                vector=vectors[p.text_hash],
                payload=p.payload,
                sparse=bm25.document_vector(p.terms, average_terms),
            )
            for p in pending
        ]
        if not self._collection_ready:
            self.app.ensure_collection()
            self._collection_ready = True
        self.store.upsert(self.collection, points)
        # Chunk rows go to the catalog as they are written, so a huge document
        # never holds all of its rows in memory; they count once it is active.
        with Session(self.engine) as session:
            # Chunk rows need their document: a new one gets a pending row,
            # invisible to search until it is activated.
            for p in pending:
                if not p.document.has_row:
                    session.add(self._new_row(p.document))
                    p.document.has_row = True
            session.flush()
            rows = [
                {"document_id": p.document_id, "version": p.version, **p.row}
                for p in pending
            ]
            repo.add_chunks(session, rows)
            session.commit()

    def _average_terms(self, pending: list[_PendingChunk]) -> float:
        """BM25's average chunk length: the index's, or the first batch's.

        Read from the catalog's active chunks once per run (an aggregate over
        every chunk: per batch it would grow with the index), so each run
        follows the collection as it grows; weights already written keep the
        average of their time, which moves little once there are many chunks.
        """
        if self._run_average_terms is None:
            with Session(self.engine) as session:
                known = repo.get_average_terms(session)
            if known is None:
                terms = sum(len(p.terms) for p in pending)
                known = max(1.0, terms / max(len(pending), 1))
            self._run_average_terms = known
        return self._run_average_terms

    def _embeddings(
        self, hashes: list[str], texts: list[str], summary: IngestSummary
    ) -> dict[str, npt.NDArray[np.float32]]:
        vectors, encoded = embed_cached(self.engine, self.encoder, hashes, texts)
        summary.chunks_reused += len(hashes) - encoded
        summary.chunks_encoded += encoded
        return vectors

    def _activate(self, documents: list[_OpenDocument], summary: IngestSummary) -> None:
        """Switch each document to its new version, then tidy the store.

        One commit covers the batch: each document switches atomically, and
        committing per batch instead of per document keeps small files cheap.
        """
        with Session(self.engine) as session:
            rows = repo.get_documents(session, (d.document_id for d in documents))
            for document in documents:
                row = rows.get(document.document_id)
                if row is None:
                    row = self._new_row(document)
                    session.add(row)
                _fill_row(row, document)
                repo.delete_chunks(
                    session, document.document_id, keep_version=document.version
                )
            session.commit()

        for document in documents:
            summary.chunks += document.chunk_count
            if not document.known:
                summary.new += 1
                continue
            # Only a document indexed before has old points to delete.
            summary.changed += 1
            self.store.delete_by_filter(
                self.collection,
                Filter(
                    must=(MatchAny("doc_id", (document.document_id,)),),
                    must_not=(MatchAny("version", (document.version,)),),
                ),
            )

    @staticmethod
    def _new_row(document: _OpenDocument) -> Document:
        return Document(
            id=document.document_id,
            source_path=document.source,
            file_type=document.loaded.file_type,
            status=DocumentStatus.PENDING,
        )

    def _discard_partial(self, document_id: str, version: str) -> None:
        """Drop the points and rows of a version that failed midway, unless active."""
        self._pending = [p for p in self._pending if p.document_id != document_id]
        with Session(self.engine) as session:
            row = repo.get_document(session, document_id)
            if row is not None and row.active_version == version:
                return
            repo.delete_chunks(session, document_id, version=version)
            session.commit()
        self._delete_points(
            Filter(
                must=(
                    MatchAny("doc_id", (document_id,)),
                    MatchAny("version", (version,)),
                )
            )
        )

    def _delete_points(self, filter: Filter) -> None:
        # Before the first upsert of a new index there is nothing to delete.
        if self.store.collection_exists(self.collection):
            self.store.delete_by_filter(self.collection, filter)

    def _record_failure(
        self, source: str, path: Path, reason: str, summary: IngestSummary
    ) -> None:
        file_type = path.suffix.lower().lstrip(".")
        with Session(self.engine) as session:
            repo.create_failed_document(session, source, file_type, reason)
            session.commit()
        summary.add_failure(source, reason)

    def _prune(
        self, roots: Sequence[Path], seen: set[str], summary: IngestSummary
    ) -> None:
        """Remove documents under the walked folders whose files are gone."""
        for root in roots:
            if not root.is_dir():
                continue
            prefix = str(root.resolve()).rstrip("/") + "/"
            with Session(self.engine) as session:
                for document in repo.list_documents(
                    session, Access.unrestricted(), under=prefix
                ):
                    if (
                        document.source_path in seen
                        or Path(document.source_path).exists()
                    ):
                        continue
                    self._delete_points(
                        Filter(must=(MatchAny("doc_id", (document.id,)),))
                    )
                    session.delete(document)
                    summary.removed += 1
                session.commit()


def remove_document(app: App, document_id: str) -> bool:
    """Take a document out of the index: its catalog row, then its points.

    The catalog goes first, so the document leaves search at once; points
    left by a crash in between are invisible (no active version) and the
    next removal or ``check --repair`` takes them away.
    """
    with Session(app.engine) as session:
        removed = repo.delete_document(session, document_id)
        session.commit()
    if app.store.collection_exists(app.collection):
        app.store.delete_by_filter(
            app.collection, Filter(must=(MatchAny("doc_id", (document_id,)),))
        )
    return removed


def _fill_row(row: Document, document: _OpenDocument) -> None:
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


def _unchanged(existing: Document, version: str) -> bool:
    return existing.status == DocumentStatus.INDEXED and existing.active_version == version


def _reason(exc: LoadError | InvalidInputError) -> str:
    return exc.reason if isinstance(exc, LoadError) else str(exc)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file vanished"
    return exc.strerror or str(exc)
