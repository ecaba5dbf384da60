"""Query to hits: encode, one filtered store query, join with the catalog.

A point counts only while the catalog says its document's active version is
the one the point was made from; points of other versions (a document being
replaced, or left behind by a crash) are dropped here, and the store is asked
again for more when dropping left a page short.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from search.catalog import repository as repo
from search.errors import InvalidInputError
from search.filters import Principal, SearchFilters, build_filter
from search.stores.base import ScoredPoint, VectorStore

if TYPE_CHECKING:
    from search.app import App
    from search.encoder import Encoder

logger = logging.getLogger(__name__)

MAX_TOP_K = 1000
QUERY_CACHE_SIZE = 256


@dataclass(frozen=True)
class Hit:
    """One ranked chunk of one document, with what a result page shows."""

    document_id: str
    chunk_ordinal: int
    score: float
    text: str
    title: str
    path: str
    page: int | None
    char_start: int
    char_end: int
    file_type: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "chunk_ordinal": self.chunk_ordinal,
            "score": round(self.score, 6),
            "title": self.title,
            "path": self.path,
            "file_type": self.file_type,
            "page": self.page,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "text": self.text,
            "metadata": self.metadata,
        }


class Searcher:
    """Dense search over one collection, filtered, joined with the catalog."""

    def __init__(
        self, encoder: Encoder, store: VectorStore, engine: Engine, collection: str
    ) -> None:
        self.encoder = encoder
        self.store = store
        self.engine = engine
        self.collection = collection
        # Later pages and repeated queries skip the model (about 15 ms a query
        # on a 2-core CPU, most of a search's time).
        self._query_vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._cache_lock = threading.Lock()

    @classmethod
    def for_app(cls, app: App) -> Searcher:
        return cls(app.encoder, app.store, app.engine, app.collection)

    def search(
        self,
        query: str,
        top_k: int = 10,
        filters: SearchFilters | None = None,
        offset: int = 0,
        principal: Principal | None = None,
    ) -> list[Hit]:
        """The ``top_k`` best chunks for ``query`` after ``offset``, best first."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("the query is empty")
        if isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInputError(f"top_k must be between 1 and {MAX_TOP_K}")
        if offset < 0:
            raise InvalidInputError("offset must not be negative")
        store_filter = build_filter(filters, principal)
        if not self.store.collection_exists(self.collection):
            return []

        vector = self._query_vector(query)
        wanted = offset + top_k
        limit = wanted + 8
        while True:
            points = self.store.search(self.collection, vector, limit, store_filter)
            hits = self._active_hits(points)
            if len(hits) >= wanted or len(points) < limit:
                return hits[offset:wanted]
            limit *= 2

    def _query_vector(self, query: str) -> npt.NDArray[np.float32]:
        with self._cache_lock:
            cached = self._query_vectors.get(query)
            if cached is not None:
                self._query_vectors.move_to_end(query)
                return cached
        vector = self.encoder.encode(query)
        with self._cache_lock:
            self._query_vectors[query] = vector
            if len(self._query_vectors) > QUERY_CACHE_SIZE:
                self._query_vectors.popitem(last=False)
        return vector

    def _active_hits(self, points: list[ScoredPoint]) -> list[Hit]:
        with Session(self.engine) as session:
            documents = repo.get_documents(
                session, (p.payload["doc_id"] for p in points)
            )
            active = {d.id: d for d in documents.values() if d.active_version}
            hits = []
            for point in points:
                payload = point.payload
                document = active.get(payload["doc_id"])
                if document is None or document.active_version != payload["version"]:
                    continue
                hits.append(_hit(point, document.author))
        return hits


_default: Searcher | None = None
_default_app: App | None = None
_default_lock = threading.Lock()


def search(
    query: str,
    top_k: int = 10,
    filters: SearchFilters | None = None,
    offset: int = 0,
) -> list[Hit]:
    """Search the index the environment's settings select (``SEMSEARCH_*``).

    The encoder, catalog and store are opened on the first call and kept for
    the life of the process; with the embedded store that holds it, so other
    processes see it in use until this one exits.
    """
    global _default, _default_app
    with _default_lock:
        if _default is None:
            from search.app import App

            _default_app = App(role="search")
            _default = Searcher.for_app(_default_app)
    return _default.search(query, top_k, filters, offset)


def close_default() -> None:
    """Release what :func:`search` opened (the embedded store's lock among it)."""
    global _default, _default_app
    with _default_lock:
        if _default_app is not None:
            _default_app.close()
        _default, _default_app = None, None


def _iso_date(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _hit(point: ScoredPoint, author: str | None) -> Hit:
    payload = point.payload
    return Hit(
        document_id=payload["doc_id"],
        chunk_ordinal=int(payload["ordinal"]),
        score=point.score,
        text=payload["text"],
        title=payload.get("title", ""),
        path=payload["path"],
        page=payload.get("page"),
        char_start=int(payload["char_start"]),
        char_end=int(payload["char_end"]),
        file_type=payload.get("file_type", ""),
        metadata={
            "tags": payload.get("tags", []),
            "groups": [g for g in payload.get("groups", []) if g != "*"],
            "date": _iso_date(payload.get("date")),
            "author": author,
        },
    )
