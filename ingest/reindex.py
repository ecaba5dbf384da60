"""Switching the index to another model without stopping search.

:func:`reindex` builds the new model's collection beside the live one and
then makes it live in one catalog commit (search.active_index):

1. The gate, if asked: the BEIR folder is evaluated with both models (dense
   nDCG@10); a lower score for the new one refuses the switch before any
   work is done.
2. The copy: every active document's chunks are read from the live
   collection (their text is in the payload), embedded with the new model
   (the embedding cache first: text already encoded by that model costs
   nothing) and written to the new collection under the same point ids.
   Searches meanwhile go on against the live collection.
3. The switch: with the active-index row locked (ingest's activations wait
   on it), the documents activated since their copy are copied again, those
   gone are deleted, and the row is rewritten; one commit. On servers the
   Qdrant alias ``semsearch-active`` then follows.

An interrupted reindex switches nothing; run again, it skips what the new
collection already holds. The old collection stays, so switching back is a
reindex that copies only what changed since.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.batches import check_lease, hold_lease
from search import bm25
from search.active_index import (
    ACTIVE_ALIAS,
    ActiveIndex,
    index_for,
    read_active,
    write_active,
)
from search.analysis import Analyzer
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Chunk, Document, DocumentStatus
from search.catalog.repository import Lease
from search.embedding_cache import embed_cached, text_hash
from search.errors import InvalidInputError, ReindexRefusedError
from search.stores.base import Filter, MatchAny, Point, ScoredPoint

if TYPE_CHECKING:
    from search.encoder import Encoder

logger = logging.getLogger(__name__)

# Documents read from the catalog and the live collection at a time.
DOCUMENT_PAGE = 64
UPSERT_BATCH = 256


@dataclass
class ReindexSummary:
    model: str
    collection: str
    previous: str
    documents: int = 0
    chunks: int = 0
    chunks_encoded: int = 0
    chunks_reused: int = 0
    # Copied again at the switch: documents activated while the copy ran.
    caught_up: int = 0
    switched: bool = False
    stopped: bool = False
    gate: dict[str, Any] | None = None
    seconds: float = 0.0
    note: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def one_line(self) -> str:
        if self.note:
            return self.note
        if self.stopped:
            return f"stopped before the switch; search stays on {self.previous}"
        return (
            f"switched to {self.collection}: {self.documents} documents, "
            f"{self.chunks} chunks ({self.chunks_encoded} encoded) in "
            f"{self.seconds:.1f} s"
        )

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ReindexSummary:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in value.items() if k in known})


@dataclass
class _Copied:
    """What the new collection holds: a version and point ids per document."""

    versions: dict[str, str] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)

    def holds(self, document: Document) -> bool:
        """Whether every chunk of the document's active version is here."""
        return (
            self.versions.get(document.id) == document.active_version
            and len(self.ids.get(document.id, ())) == document.chunk_count
        )


def reindex_params(model: str, gate: Path | None, split: str) -> dict[str, Any]:
    return {
        "model": model,
        "gate": str(gate.expanduser().absolute()) if gate else None,
        "split": split,
    }


class Reindexer:
    """One reindex run into ``model``'s collection (see the module's doc)."""

    def __init__(
        self,
        app: App,
        model: str,
        lease: Lease | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.lease = lease
        self.stop = stop or threading.Event()
        self.progress = progress
        app.refresh_active()
        self.source = app.active
        target = index_for(model)
        self.target = ActiveIndex(
            target.model,
            target.identity,
            target.collection,
            chunked_with=self.source.chunked_with,
        )
        self.analyzer = Analyzer(app.settings.language)
        self.summary = ReindexSummary(
            model=self.target.model,
            collection=self.target.collection,
            previous=self.source.collection,
        )
        self._average_terms: float | None = None

    @property
    def encoder(self) -> Encoder:
        return self.app.encoder_for(self.target)

    def run(self, gate: Path | None = None, split: str = "test") -> ReindexSummary:
        started = time.perf_counter()
        summary = self.summary
        if self.target.identity == self.source.identity:
            summary.note = f"{self.target.model} is the active model already"
            return summary
        if gate is not None:
            summary.gate = self.check_gate(gate, split)
        self._check_window()
        self.app.ensure_collection(self.target, self.encoder)
        copied = self._present()
        for documents in self._active_pages():
            if self.stop.is_set():
                summary.stopped = True
                return summary
            check_lease(self.lease)
            self._copy([d for d in documents if not copied.holds(d)], copied)
            summary.documents += len(documents)
            if self.progress:
                self.progress(f"{summary.documents} documents")
        self._switch(copied)
        summary.switched = True
        summary.seconds = round(time.perf_counter() - started, 1)
        return summary

    def _check_window(self) -> None:
        """Warn when indexed chunks are longer than the new model reads.

        The chunks are kept as they are (their token counts are the first
        model's), so a model with a shorter window would not see their ends.
        """
        with Session(self.app.engine) as session:
            longest = session.scalar(
                select(func.max(Chunk.token_count))
                .join(Document, Document.id == Chunk.document_id)
                .where(Chunk.version == Document.active_version)
            )
        window = self.encoder.max_seq_length - self.encoder.special_tokens
        if longest is not None and longest > window:
            message = (
                f"the longest chunk has {longest} tokens (of {self.source.chunked_with}"
                f"'s tokenizer) and {self.target.model} reads {window}: chunk ends "
                "beyond that are not embedded; a smaller SEMSEARCH_CHUNK_TOKENS and "
                "a fresh ingest make chunks that fit"
            )
            logger.warning("%s", message)
            self.summary.warnings.append(message)

    # -- the gate -----------------------------------------------------------

    def check_gate(self, folder: Path, split: str) -> dict[str, Any]:
        """Dense nDCG@10 of both models on ``folder``; refuses a drop."""
        from search.evaluation import Evaluator, load_beir
        from search.retrieval import Ranking

        data = load_beir(folder, split)
        scores = {}
        for name, index in (("before", self.source), ("after", self.target)):
            evaluator = Evaluator(self.app, data, encoder=self.app.encoder_for(index))
            evaluator.ensure_index()
            scores[name] = round(
                evaluator.run(Ranking.of("dense")).metrics["ndcg@10"], 4
            )
        gate = {"folder": str(folder), "split": split, "ndcg@10": scores}
        logger.info("Gate on %s: nDCG@10 %s", folder, scores)
        if scores["after"] < scores["before"]:
            raise ReindexRefusedError(
                f"not switched: on {data.name} ({split}) dense nDCG@10 would drop "
                f"from {scores['before']:.4f} ({self.source.model}) to "
                f"{scores['after']:.4f} ({self.target.model})"
            )
        return gate

    # -- the copy -----------------------------------------------------------

    def _active_pages(self) -> Iterator[list[Document]]:
        """Active documents in id order, a page at a time."""
        after = ""
        while True:
            with Session(self.app.engine) as session:
                page = list(
                    session.scalars(
                        select(Document)
                        .where(
                            Document.status == DocumentStatus.INDEXED,
                            Document.active_version.is_not(None),
                            Document.id > after,
                        )
                        .order_by(Document.id)
                        .limit(DOCUMENT_PAGE)
                    )
                )
            if not page:
                return
            yield page
            after = page[-1].id

    def _present(self) -> _Copied:
        """What the new collection already holds (an earlier, interrupted run)."""
        copied = _Copied()
        offset = None
        store = self.app.store
        while True:
            points, offset = store.scroll(
                self.target.collection, limit=1024, offset=offset
            )
            for point in points:
                doc_id = str(point.payload["doc_id"])
                copied.ids.setdefault(doc_id, []).append(point.id)
                copied.versions[doc_id] = str(point.payload["version"])
            if offset is None:
                return copied

    def _copy(
        self, documents: Sequence[Document], copied: _Copied, cache: bool = True
    ) -> None:
        """Embed the active chunks of ``documents`` into the new collection;
        ``cache``: keep new embeddings in the cache (see embed_cached)."""
        if not documents:
            return
        by_id = {d.id: d for d in documents}
        points = self._live_points(by_id)
        missing = [
            d.id for d in documents if len(points.get(d.id, [])) != d.chunk_count
        ]
        if missing:
            raise ReindexRefusedError(
                f"not switched: the live collection lacks points of {len(missing)} "
                f"document(s) (e.g. {by_id[missing[0]].source_path}); run "
                "`semsearch check --repair`, then reindex again"
            )
        flat = [p for doc_id in by_id for p in points.get(doc_id, [])]
        texts = [str(p.payload["text"]) for p in flat]
        hashes = [text_hash(t) for t in texts]
        vectors, encoded = embed_cached(
            self.app.engine, self.encoder, hashes, texts, store=cache
        )
        average = self._average()
        new_points = [
            Point(
                id=p.id,
                vector=vectors[h],
                payload=p.payload,
                sparse=bm25.document_vector(self.analyzer.terms(t), average),
            )
            for p, h, t in zip(flat, hashes, texts, strict=True)
        ]
        store = self.app.store
        stale = [i for d in documents for i in copied.ids.get(d.id, [])]
        for start in range(0, len(new_points), UPSERT_BATCH):
            store.upsert(
                self.target.collection, new_points[start : start + UPSERT_BATCH]
            )
        fresh = {p.id for p in new_points}
        gone = [i for i in stale if i not in fresh]
        if gone:
            store.delete(self.target.collection, gone)
        for document in documents:
            copied.versions[document.id] = str(document.active_version)
            copied.ids[document.id] = [p.id for p in points.get(document.id, [])]
        self.summary.chunks_encoded += encoded
        self.summary.chunks_reused += len(flat) - encoded

    def _live_points(
        self, documents: dict[str, Document]
    ) -> dict[str, list[ScoredPoint]]:
        """The live collection's points of each document's active version."""
        store = self.app.store
        found: dict[str, list[ScoredPoint]] = {}
        where = Filter(must=(MatchAny("doc_id", tuple(documents)),))
        offset = None
        while True:
            page, offset = store.scroll(
                self.source.collection, where, limit=1024, offset=offset
            )
            for point in page:
                document = documents[str(point.payload["doc_id"])]
                if point.payload.get("version") == document.active_version:
                    found.setdefault(document.id, []).append(point)
            if offset is None:
                break
        for points in found.values():
            points.sort(key=lambda p: int(p.payload["ordinal"]))
        return found

    def _average(self) -> float:
        if self._average_terms is None:
            with Session(self.app.engine) as session:
                self._average_terms = repo.get_average_terms(session) or 1.0
        return self._average_terms

    # -- the switch ---------------------------------------------------------

    def _catch_up(self, session: Session, copied: _Copied, cache: bool = True) -> int:
        """Copy documents activated since their copy, delete those gone; how
        many documents were copied again."""
        active = {
            d.id: d
            for d in session.scalars(
                select(Document).where(
                    Document.status == DocumentStatus.INDEXED,
                    Document.active_version.is_not(None),
                )
            )
        }
        changed = [d for d in active.values() if not copied.holds(d)]
        self._copy(changed, copied, cache=cache)
        gone = [doc_id for doc_id in copied.ids if doc_id not in active]
        ids = [i for doc_id in gone for i in copied.ids[doc_id]]
        if ids:
            self.app.store.delete(self.target.collection, ids)
        for doc_id in gone:
            del copied.ids[doc_id]
            copied.versions.pop(doc_id, None)
        self.summary.chunks = sum(len(copied.ids.get(i, ())) for i in active)
        return len(changed)

    def _switch(self, copied: _Copied) -> None:
        """Catch up with the catalog and make the new collection live, in one
        transaction that holds the active-index row.

        Most catching up happens before the row is locked (ingest goes on
        meanwhile); under the lock only what was activated in the last moments
        is copied, its new embeddings not cached (SQLite: the cache's insert
        would wait on the lock this transaction holds).
        """
        for _ in range(3):
            with Session(self.app.engine) as session:
                again = self._catch_up(session, copied)
            self.summary.caught_up += again
            if not again:
                break
        with Session(self.app.engine) as session:
            hold_lease(session, self.lease)
            live = read_active(session, exclusive=True)
            if live is not None and live.collection != self.source.collection:
                raise ReindexRefusedError(
                    f"not switched: another reindex made {live.model} live meanwhile"
                )
            self.summary.caught_up += self._catch_up(session, copied, cache=False)
            write_active(session, self.target)
            session.commit()
        logger.info(
            "Switched the index to %s (%s)", self.target.model, self.target.collection
        )
        self.app.use_active(self.target)
        self._point_alias()

    def _point_alias(self) -> None:
        """Move the server's alias to the new collection (after the commit: the
        catalog is what semsearch follows; the alias is for other readers)."""
        point_alias = getattr(self.app.store, "point_alias", None)
        if point_alias is None:
            return
        try:
            point_alias(ACTIVE_ALIAS, self.target.collection)
        except Exception as exc:  # the switch stands; the alias is a mirror
            logger.warning("Could not move alias %s: %s", ACTIVE_ALIAS, exc)


def check_model(model: str) -> None:
    """Refuse a model that cannot be loaded before a job is queued for it."""
    from search.models import resolve_model

    if not model.strip():
        raise InvalidInputError("name a model: --model NAME or folder")
    resolve_model(model)
