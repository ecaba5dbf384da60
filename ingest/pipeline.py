"""Files in, searchable chunks out: the ingest pipeline.

For each file: hash it, and skip it when the catalog already holds that
content with the same assigned tags and groups (``--tag``, ``--group``, the
access rules file); else load it, chunk it on the model's
tokenizer, take the embeddings of unchanged chunk texts from the cache and
encode the rest, batched across documents. The new version's chunk rows and
points are written beside the old ones, the catalog switches the document to
the new version in one commit, and the old points are deleted after, then
their rows. A search joins its hits with the catalog and drops points of
inactive versions, so it never mixes old and new chunks of one document, even
after a crash midway; ingest.consistency has the order of writes that lets
the next run clear what a crash left.

A file that kills the process while it is read is given up after a few
tries (ingest.attempts), so that it blocks no later run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ingest.access_rules import AccessRules, load_rules
from ingest.attempts import Attempts, attempts_so_far
from ingest.batches import Batch, BatchWriter, OpenDocument, PendingChunk, check_lease
from ingest.consistency import (
    point_id,
    remove_documents,
    sweep_leftovers,
)
from ingest.documents import Limits, LoadError
from ingest.loaders import load
from ingest.loaders._limits import check_size, grew_past
from ingest.stages import Stages
from ingest.summary import IngestSummary
from ingest.walk import walk
from search import embedding_cache
from search.access import UNGROUPED, Access, check_groups
from search.analysis import Analyzer
from search.app import INDEX_FORMAT, App
from search.catalog import repository as repo
from search.catalog.models import Document, DocumentStatus
from search.catalog.repository import Lease
from search.chunking import chunk_spans
from search.device import select_device
from search.errors import InvalidInputError
from search.filters import path_prefixes

if TYPE_CHECKING:
    from search.encoder import Encoder

logger = logging.getLogger(__name__)

__all__ = ["IngestOptions", "Ingestor", "file_hash", "point_id", "remove_document"]

# Chunks encoded together: large enough that sorting them by length pads
# little and flushes are few (256 cost 16% of ingest time in bench/ingest.py),
# small enough to bound memory on a huge document.
PENDING_CHUNKS = 1024
# Batches waiting before the encoder and before the writer: two keep either
# busy while the one before it has a slow batch, in bounded memory.
STAGE_DEPTH = 2


def file_hash(path: Path, limits: Limits | None = None) -> str:
    """The SHA-256 of the file's bytes, refusing a file over the size limit
    from its size before reading, and one that grows past it while read."""
    limits = limits or Limits()
    with path.open("rb") as stream:
        check_size(os.fstat(stream.fileno()).st_size, limits, path)
        digest = hashlib.sha256()
        read = 0
        for block in iter(lambda: stream.read(1 << 20), b""):
            read += len(block)
            if read > limits.max_bytes:
                raise grew_past(limits, path)
            digest.update(block)
    return digest.hexdigest()


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
        # The index this run writes to, fixed for the run: a switch meanwhile
        # (ingest.reindex) refuses its activations, and the job runs again.
        self.index = app.active
        self._pending: list[PendingChunk] = []
        self._ready: list[OpenDocument] = []
        self._stages: Stages | None = None
        self._rules = AccessRules()
        self._groups: tuple[str, ...] = ()
        self._lease: Lease | None = None
        self._attempts = Attempts(
            app.engine,
            app.settings.retry_attempts,
            before_first=lambda: self.chunk_sizes,  # loads the encoder
        )

    @property
    def engine(self) -> Engine:
        return self.app.engine

    @cached_property
    def encoder(self) -> Encoder:
        return self.app.encoder_for(self.index)

    @cached_property
    def chunk_sizes(self) -> tuple[int, int]:
        return self.app.chunk_sizes_for(self.encoder)

    def version_of(
        self,
        content_hash: str,
        tags: Sequence[str] = (),
        groups: Sequence[str] = (),
    ) -> str:
        """The version a file gets: its content hash, the tags and groups the
        run assigns it, the chunking, and the model the index was first built
        with (a reindex to another model keeps the chunks, so not its model).

        Changing any of them makes the file a new version, written beside the
        old one and switched to in one commit (embeddings come from the cache),
        so that points never carry groups the catalog no longer gives.
        """
        s = self.app.settings
        key = (
            f"{content_hash}:{self.index.chunked_with}:{s.chunk_tokens}:{s.chunk_overlap}"
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
        *,
        lease: Lease | None = None,
        stop: threading.Event | None = None,
    ) -> IngestSummary:
        """Ingest ``paths`` (files or folders); see the module docstring.

        First clears what interrupted runs left (ingest.consistency). A run
        for a job passes the job's ``lease``: its chunk rows name the job as
        their writer, so that other workers' sweeps leave them alone, and each
        batch of documents becomes active only while the lease is still this
        worker's (else :class:`LeaseLostError`, with nothing made active).
        When ``stop`` is set (a worker told to shut down), the run ends after
        the file at hand, with what it read written, and the summary says
        ``stopped``: running it again goes on where it ended (unchanged files
        are skipped).
        """
        options = options or IngestOptions()
        self._groups = check_groups(options.groups)
        rules = options.rules or self.app.settings.access_rules
        self._rules = load_rules(Path(rules) if rules else None)
        summary = IngestSummary()
        self._lease = lease
        started = time.perf_counter()
        sweep_leftovers(self.app, lease.job_id if lease is not None else None)
        seen: set[str] = set()
        with self._flowing(summary):
            for item in walk(paths, exclude=options.exclude):
                if stop is not None and stop.is_set():
                    summary.stopped = True
                    break
                check_lease(lease)
                source = (
                    str(item.path.resolve()) if item.path.exists() else str(item.path)
                )
                if progress:
                    progress(source)
                if item.problem is not None:
                    self._record_failure(source, item.path, item.problem, summary)
                    continue
                seen.add(source)
                self._ingest_file(item.path, item.root, source, options, summary)
            self._flush()
        if options.prune and not summary.stopped:
            self._prune(paths, seen, summary)
        summary.seconds = time.perf_counter() - started
        logger.info("Ingest finished: %s", summary.one_line())
        return summary

    def rewrite(self, document_ids: Sequence[str]) -> dict[str, str]:
        """Write the active version of documents again, as the catalog has it.

        For ``check --repair``: each file is read again and its points and
        chunk rows rewritten at the active version, with the catalog's tags
        and groups (embeddings come from the cache). Returns, by document id,
        why a document could not be rewritten: its file is gone, changed
        since it was indexed (its indexed version cannot be read back) or
        unreadable now.
        """
        problems: dict[str, str] = {}
        summary = IngestSummary()
        self._lease = None
        with self._flowing(summary):
            for document_id in document_ids:
                with Session(self.engine, expire_on_commit=False) as session:
                    row = repo.get_document(session, document_id)
                if row is None or row.active_version is None:
                    continue
                try:
                    self._reopen(row)
                except OSError as exc:
                    problems[document_id] = f"cannot read the file: {_os_reason(exc)}"
                except (LoadError, InvalidInputError) as exc:
                    problems[document_id] = _reason(exc)
            self._flush()
        return problems

    def _reopen(self, row: Document) -> None:
        """Read the file of ``row``'s active version into pending chunks."""
        path = Path(row.source_path)
        if file_hash(path, self.limits) != row.content_hash:
            raise InvalidInputError(
                "the file changed since it was indexed; ingest it again"
            )
        assert row.active_version is not None
        document = OpenDocument(
            load(path, self.limits),
            row.id,
            row.source_path,
            row.active_version,
            root=row.root_path,
            tags=list(row.tags or ()),
            groups=row.access_groups,
            known=True,
        )
        try:
            self._chunk(document)
        except (LoadError, InvalidInputError):
            self._discard_partial(row.id, row.active_version)
            raise
        self._ready.append(document)

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
            content_hash = file_hash(path, self.limits)
        except OSError as exc:
            self._record_failure(source, path, _os_reason(exc), summary)
            return
        except LoadError as exc:
            self._record_failure(source, path, exc.reason, summary)
            return
        assigned = tuple(
            sorted(set(self._groups) | set(self._rules.groups_for(path, root)))
        )
        version = self.version_of(content_hash, options.tags, assigned)
        with Session(self.engine) as session:
            existing = repo.get_document(session, document_id)
            if existing is not None and _unchanged(existing, version):
                if existing.attempts:
                    existing.attempts = 0
                    session.commit()
                summary.unchanged += 1
                return
            known = existing is not None and existing.active_version is not None
            attempts = attempts_so_far(existing, path)
        given_up = self._attempts.given_up(attempts)
        if given_up is not None:
            self._record_failure(source, path, given_up, summary, attempts=attempts)
            return

        self._attempts.begin(
            document_id, source, path, attempts, has_row=existing is not None
        )
        try:
            loaded = load(path, self.limits)
            document = OpenDocument(
                loaded,
                document_id,
                source,
                version,
                root=str(root) if root is not None else None,
                known=known,
                had_row=existing is not None,
            )
            _assign(document, assigned, options.tags)
            self._chunk(document)
        except (LoadError, InvalidInputError) as exc:
            self._discard_partial(document_id, version)
            self._record_failure(source, path, _reason(exc), summary)
            return
        self._attempts.read(document_id)
        if not document.chunk_count:
            self._record_failure(source, path, "no text to index", summary)
            return
        self._ready.append(document)
        if len(self._pending) >= PENDING_CHUNKS:
            self._flush()

    def _chunk(self, document: OpenDocument) -> None:
        """Chunk the document's segments into pending chunks, flushing as needed."""
        loaded = document.loaded
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
            spans = chunk_spans(segment.text, offsets, *self.chunk_sizes)
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
                    PendingChunk(
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
                    self._write_pending()

    def _flush(self) -> None:
        """Hand over the pending chunks with the documents they complete."""
        if self._pending or self._ready:
            self._hand_over(Batch(chunks=self._pending, activate=self._ready))
        self._pending = []
        self._ready = []

    def overlap(self) -> str:
        """Which steps run in threads of their own (``SEMSEARCH_INGEST_OVERLAP``).

        ``all``: encoding and writing, while the caller reads; ``write``:
        writing only; ``none``: every step in turn. ``auto`` takes ``all``
        with a GPU (the encoder is then faster than parsing and writing),
        ``write`` with a CPU encoder and a Qdrant server (its answers are
        waits), ``none`` with a CPU encoder and the embedded store, where
        every step needs the same cores: overlapped, they ran 0.86x as fast
        on 2 cores (bench/ingest.py --in-turn).
        """
        chosen = self.app.settings.ingest_overlap
        if chosen != "auto":
            return chosen
        if select_device(self.app.settings.device).type != "cpu":
            return "all"
        return "none" if self.app.settings.embedded_store else "write"

    @contextmanager
    def _flowing(self, summary: IngestSummary) -> Iterator[None]:
        """Encode and write batches, overlapped with reading as :meth:`overlap`
        says. On the way out every batch handed over is written, and the
        first error of either step is raised here (ingest.stages).
        """
        writer = BatchWriter(
            self.app, self.index, lambda: self.encoder, summary, self._lease
        )
        self._stages = Stages(
            [writer.encode, writer.write],
            depth=STAGE_DEPTH,
            name="ingest",
            inline={"all": 0, "write": 1, "none": 2}[self.overlap()],
        )
        try:
            yield
        finally:
            stages, self._stages = self._stages, None
            stages.close()

    def _write_pending(self) -> None:
        """Hand the pending chunks to be encoded and written, as one batch."""
        if self._pending:
            self._hand_over(Batch(chunks=self._pending))
            self._pending = []

    def _hand_over(self, batch: Batch) -> None:
        # Files read to the end are not to blame if the process dies while
        # their batch is encoded.
        self._attempts.settle()
        assert self._stages is not None, "batches flow only inside _flowing()"
        self._stages.put(batch)

    def _discard_partial(self, document_id: str, version: str) -> None:
        """Drop what a version that failed midway wrote, unless it is active.

        Its rows were written before its points, so they name every point
        it wrote: points first, then rows (ingest.consistency).
        """
        self._pending = [p for p in self._pending if p.document_id != document_id]
        self._hand_over(Batch(discard=[document_id]))

    def _record_failure(
        self,
        source: str,
        path: Path,
        reason: str,
        summary: IngestSummary,
        attempts: int = 0,
    ) -> None:
        """Record the file as failed; an already indexed version stays active.

        ``attempts`` is kept on the row: 0 (an attempt that ended) unless the
        file was given up, which keeps its count so that it stays given up.
        """
        file_type = path.suffix.lower().lstrip(".")
        with Session(self.engine) as session:
            document = repo.create_failed_document(session, source, file_type, reason)
            document.attempts = attempts
            self._attempts.reset(session)
            session.commit()
        summary.add_failure(source, reason)

    def _prune(
        self, roots: Sequence[Path], seen: set[str], summary: IngestSummary
    ) -> None:
        """Remove documents under the walked folders whose files are gone."""
        gone: list[str] = []
        for root in roots:
            if not root.is_dir():
                continue
            prefix = str(root.resolve()).rstrip("/") + "/"
            with Session(self.engine) as session:
                documents = repo.list_documents(
                    session, Access.unrestricted(), under=prefix
                )
            gone.extend(
                d.id
                for d in documents
                if d.source_path not in seen and not Path(d.source_path).exists()
            )
        summary.removed += remove_documents(self.app, gone)


def remove_document(app: App, document_id: str) -> bool:
    """Take a document out of the index; whether it was there.

    It leaves search at once (one commit marks it), then its points go, then
    its row; the next ingest run finishes a removal that a crash cut short
    (ingest.consistency.remove_documents).
    """
    return remove_documents(app, [document_id]) == 1


def _assign(document: OpenDocument, groups: Sequence[str], tags: Sequence[str]) -> None:
    """The document's groups and tags: the run's and the file's own."""
    loaded = document.loaded
    try:
        own = check_groups(loaded.groups)
    except InvalidInputError as exc:
        raise InvalidInputError(f"front matter groups: {exc}") from None
    document.groups = sorted(set(groups) | set(own))
    document.tags = sorted(set(loaded.tags) | set(tags))


def _unchanged(existing: Document, version: str) -> bool:
    return (
        existing.status == DocumentStatus.INDEXED and existing.active_version == version
    )


def _reason(exc: LoadError | InvalidInputError) -> str:
    return exc.reason if isinstance(exc, LoadError) else str(exc)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file vanished"
    return exc.strerror or str(exc)
