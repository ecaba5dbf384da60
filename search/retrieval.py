"""Query to hits: encode, one filtered store query (dense, keyword or hybrid),
join with the catalog.

A point counts only while the catalog says its document's active version is
the one the point was made from; points of other versions (a document being
replaced, or left behind by a crash) are dropped here, and the store is asked
again for more when dropping left a page short.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from search import bm25, embedding_cache
from search.access import UNGROUPED, Access, AccessPolicy, Principal
from search.analysis import Analyzer
from search.catalog import repository as repo
from search.errors import InvalidInputError
from search.filters import SearchFilters, build_filter
from search.grouping import DocumentResult, group_hits
from search.stores.base import (
    Condition,
    Filter,
    Fusion,
    MatchAny,
    ScoredPoint,
    VectorStore,
)

if TYPE_CHECKING:
    from search.app import App
    from search.encoder import Encoder

logger = logging.getLogger(__name__)

MAX_TOP_K = 1000
QUERY_CACHE_SIZE = 256
#: Longer queries are cut (settings.max_query_chars): the model reads at most
#: a few hundred tokens, and a huge query would only cost time.
DEFAULT_MAX_QUERY_CHARS = 1000


def bound_query(query: str, limit: int = DEFAULT_MAX_QUERY_CHARS) -> tuple[str, bool]:
    """``query`` cut to ``limit`` characters at a word boundary; whether it was."""
    if not isinstance(query, str):
        raise InvalidInputError("the query must be text")
    if limit < 1:
        raise ValueError(f"a query limit must be at least 1, not {limit}")
    query = query.strip()
    if len(query) <= limit:
        return query, False
    cut = query[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(), True


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


class Mode(StrEnum):
    """How chunks are ranked: by meaning, by words, or both fused."""

    DENSE = "dense"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


#: The default ranking, chosen on SciFact's train queries with `semsearch eval`
#: (nDCG@10: dense 0.678, keyword 0.684, hybrid RRF k=60 0.717, k=10 0.724,
#: DBSF 0.732); README "Ranking quality" has the test figures.
DEFAULT_MODE = Mode.HYBRID
DEFAULT_FUSION = Fusion.DBSF
#: Candidates each side of a hybrid query brings to the fusion: at least
#: this many, so that pages of the first results fuse the same lists (pages
#: stay stable up to this depth), and twice the wanted depth beyond it.
HYBRID_PREFETCH = 200


@dataclass(frozen=True)
class Ranking:
    """A mode and its fusion settings (the last two apply to hybrid only)."""

    mode: Mode = DEFAULT_MODE
    fusion: Fusion = DEFAULT_FUSION
    rrf_k: int = 60

    @classmethod
    def of(cls, mode: str | Mode | None, **options: Any) -> Ranking:
        try:
            return cls(Mode(mode or DEFAULT_MODE), **options)
        except ValueError:
            known = ", ".join(m.value for m in Mode)
            raise InvalidInputError(
                f"unknown ranking mode {mode!r}; use one of {known}"
            ) from None


class Searcher:
    """Dense, keyword or hybrid search over one collection, joined with the catalog."""

    def __init__(
        self,
        encoder: Encoder,
        store: VectorStore,
        engine: Engine,
        collection: str,
        analyzer: Analyzer | None = None,
        policy: AccessPolicy | None = None,
        max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    ) -> None:
        self.encoder = encoder
        self.store = store
        self.engine = engine
        self.collection = collection
        self.analyzer = analyzer or Analyzer()
        self.policy = policy or AccessPolicy()
        self.max_query_chars = max_query_chars
        # Later pages and repeated queries skip the model (about 15 ms a query
        # on a 2-core CPU, most of a search's time).
        self._query_vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._cache_lock = threading.Lock()

    @classmethod
    def for_app(cls, app: App) -> Searcher:
        return cls(
            app.encoder,
            app.store,
            app.engine,
            app.collection,
            Analyzer(app.settings.language),
            AccessPolicy.from_settings(app.settings),
            app.settings.max_query_chars,
        )

    def access(self, principal: Principal | None) -> Access:
        """What ``principal`` may read here (None: only what is public)."""
        return self.policy.access(principal)

    def bound(self, query: str) -> tuple[str, bool]:
        """The query as it will be searched, and whether it had to be cut."""
        return bound_query(query, self.max_query_chars)

    def search(
        self,
        query: str,
        top_k: int = 10,
        filters: SearchFilters | None = None,
        offset: int = 0,
        principal: Principal | None = None,
        mode: str | Mode | Ranking | None = None,
    ) -> list[Hit]:
        """The ``top_k`` best chunks for ``query`` after ``offset``, best first.

        ``mode``: dense (by meaning), keyword (BM25) or hybrid (both, fused;
        the default), or a :class:`Ranking` with fusion settings.
        """
        query, _ = self.bound(query)
        if not query:
            raise InvalidInputError("the query is empty")
        _check_top_k(top_k)
        if offset < 0:
            raise InvalidInputError("offset must not be negative")
        ranking = mode if isinstance(mode, Ranking) else Ranking.of(mode)
        access = self.access(principal)
        store_filter = build_filter(filters, access)
        if not self.store.collection_exists(self.collection):
            return []
        fetch = self._fetcher(query, ranking, store_filter)
        if fetch is None:
            return []
        return self._collect(fetch, top_k, offset, access)

    def _fetcher(
        self, query: str, ranking: Ranking, store_filter: Filter
    ) -> Callable[[int], list[ScoredPoint]] | None:
        return fetcher(
            self.store,
            self.collection,
            self.analyzer,
            self._query_vector,
            query,
            ranking,
            store_filter,
        )

    def search_documents(
        self,
        query: str,
        top_k: int = 10,
        filters: SearchFilters | None = None,
        principal: Principal | None = None,
        passages: int = 3,
        offset: int = 0,
        mode: str | Mode | Ranking | None = None,
    ) -> list[DocumentResult]:
        """Documents ``offset`` to ``offset + top_k`` for ``query``, best first.

        Each comes with its best ``passages`` chunks; a document ranks by its
        best chunk. Every page is cut from one chunk ranking fetched from the
        top, so pages are disjoint and in order; fewer documents come back
        only when fewer match (or past ``MAX_TOP_K`` chunks).
        """
        _check_top_k(top_k)
        if offset < 0:
            raise InvalidInputError("offset must not be negative")
        wanted = offset + top_k
        limit = min(MAX_TOP_K, wanted * (passages + 1))
        while True:
            hits = self.search(query, limit, filters, principal=principal, mode=mode)
            documents = group_hits(hits, passages)
            if len(documents) >= wanted or len(hits) < limit or limit == MAX_TOP_K:
                return documents[offset:wanted]
            limit = min(MAX_TOP_K, limit * 2)

    def more_like(
        self,
        document_id: str,
        ordinal: int,
        top_k: int = 10,
        filters: SearchFilters | None = None,
        principal: Principal | None = None,
    ) -> list[Hit]:
        """Chunks of other documents closest to one passage ("more like this").

        The passage's stored embedding is used (the embedding cache, by its
        text hash); only when it is not there is its text encoded again.
        """
        _check_top_k(top_k)
        access = self.access(principal)
        base = build_filter(filters, access)
        store_filter = replace(
            base, must_not=(*base.must_not, MatchAny("doc_id", (document_id,)))
        )
        if not self.store.collection_exists(self.collection):
            return []
        vector = self._passage_vector(document_id, ordinal, access)
        return self._collect(
            lambda limit: self.store.search(
                self.collection, vector, limit, store_filter
            ),
            top_k,
            0,
            access,
        )

    def _collect(
        self,
        fetch: Callable[[int], list[ScoredPoint]],
        top_k: int,
        offset: int,
        access: Access,
    ) -> list[Hit]:
        """Hits ``offset`` to ``offset + top_k`` of active versions only.

        Always fetched from the first rank and ties ordered by point id, so
        that a page is a slice of one ranking, whichever page is asked for.
        """
        wanted = offset + top_k
        limit = wanted + 8
        while True:
            points = sorted(fetch(limit), key=lambda p: (-p.score, p.id))
            complete = len(points) < limit or limit >= 16 * MAX_TOP_K
            if not complete:
                # Points tied with the last one may have equals beyond the
                # limit, which a deeper fetch could rank first: they wait.
                points = [p for p in points if p.score > points[-1].score]
            hits = self._active_hits(points, access)
            if len(hits) >= wanted or complete:
                return hits[offset:wanted]
            limit *= 2

    def _passage_vector(
        self, document_id: str, ordinal: int, access: Access
    ) -> npt.NDArray[np.float32]:
        key = embedding_cache.cache_key(self.encoder)
        with Session(self.engine) as session:
            document = repo.get_document(session, document_id, access)
            version = document.active_version if document else None
            text_hash = repo.get_chunk_text_hash(session, document_id, ordinal)
            cached = (
                repo.get_cached_embeddings(session, key, [text_hash])
                if text_hash is not None
                else {}
            )
        # The passage itself must be one the principal may read.
        must: list[Condition] = [
            MatchAny("doc_id", (document_id,)),
            MatchAny("version", (str(version),)),
        ]
        must.extend(build_filter(None, access).must)
        passage = self._find_point(Filter(must=tuple(must)), ordinal)
        if version is None or passage is None:
            raise InvalidInputError("that passage is no longer in the index")
        if text_hash in cached:
            return cached[str(text_hash)]
        return self.encoder.encode(passage.payload["text"])

    def _find_point(self, store_filter: Filter, ordinal: int) -> ScoredPoint | None:
        page: str | None = None
        while True:
            points, page = self.store.scroll(
                self.collection, store_filter, limit=256, offset=page
            )
            for point in points:
                if point.payload["ordinal"] == ordinal:
                    return point
            if page is None:
                return None

    def query_vector(self, query: str) -> npt.NDArray[np.float32]:
        """The query's embedding (cached: later pages do not encode again)."""
        return self._query_vector(query)

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

    def _active_hits(self, points: list[ScoredPoint], access: Access) -> list[Hit]:
        """Hits of the points whose document is active at that version and,
        by the catalog's own groups (not only the points'), readable."""
        with Session(self.engine) as session:
            documents = repo.get_documents(
                session, (p.payload["doc_id"] for p in points)
            )
            active = {
                d.id: d
                for d in documents.values()
                if d.active_version and access.allows(d.access_groups)
            }
            hits = []
            for point in points:
                payload = point.payload
                document = active.get(payload["doc_id"])
                if document is None or document.active_version != payload["version"]:
                    continue
                hits.append(_hit(point, document.author))
        return hits


def fetcher(
    store: VectorStore,
    collection: str,
    analyzer: Analyzer,
    encode: Callable[[str], npt.NDArray[np.float32]],
    query: str,
    ranking: Ranking,
    store_filter: Filter | None = None,
) -> Callable[[int], list[ScoredPoint]] | None:
    """The store query that ``ranking`` makes of ``query``, given a depth.

    None when nothing can match: a keyword query of stop words only. A hybrid
    query without keyword terms is a dense one.
    """
    terms = analyzer.terms(query) if ranking.mode is not Mode.DENSE else []
    if ranking.mode is Mode.KEYWORD:
        if not terms:
            return None
        sparse = bm25.query_vector(terms)
        return lambda limit: store.search_sparse(
            collection, sparse, limit, store_filter
        )
    vector = encode(query)
    if ranking.mode is Mode.DENSE or not terms:
        return lambda limit: store.search(collection, vector, limit, store_filter)
    sparse = bm25.query_vector(terms)
    return lambda limit: store.search_hybrid(
        collection,
        vector,
        sparse,
        limit,
        store_filter,
        fusion=ranking.fusion,
        rrf_k=ranking.rrf_k,
        prefetch=max(HYBRID_PREFETCH, 2 * limit),
    )


_default: Searcher | None = None
_default_app: App | None = None
_default_lock = threading.Lock()


def search(
    query: str,
    top_k: int = 10,
    filters: SearchFilters | None = None,
    offset: int = 0,
    mode: str | Mode | Ranking | None = None,
    principal: Principal | None = None,
) -> list[Hit]:
    """Search the index the environment's settings select (``SEMSEARCH_*``),
    as ``principal`` (None: only public documents).

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
    return _default.search(query, top_k, filters, offset, principal, mode)


def close_default() -> None:
    """Release what :func:`search` opened (the embedded store's lock among it)."""
    global _default, _default_app
    with _default_lock:
        if _default_app is not None:
            _default_app.close()
        _default, _default_app = None, None


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise InvalidInputError(f"top_k must be an integer, not {top_k!r}")
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidInputError(f"top_k must be between 1 and {MAX_TOP_K}")


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
            "groups": [g for g in payload.get("groups", []) if g != UNGROUPED],
            "date": _iso_date(payload.get("date")),
            "author": author,
        },
    )
