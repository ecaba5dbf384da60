"""The server vector store: a Qdrant server through qdrant-client.

The same class runs on qdrant-client's local mode (``QdrantClient(":memory:")``
or a ``path``), which is how the tests hold it to :class:`EdgeStore`. Local
mode is a brute force in Python that ignores payload indexes (and warns about
them), so this store does not create them there; it is for tests, not a store
(notes/vector-stores.md: 277 ms per unfiltered top-10 at 200k points).

Errors: a server that cannot be reached, or that refuses the API key, raises
:class:`~search.errors.StoreUnavailableError` naming the URL without
credentials; a missing collection or a request the server refuses raises
:class:`~search.errors.InvalidInputError`. Every request after ``connect`` is
idempotent (upserts by deterministic point ids) and is tried again while the
server is unreachable (:mod:`search.retry`), so that a Qdrant restart midway
does not stop an ingest; ``connect`` itself is not, so that a command meeting
a server that is down says so at once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from search.errors import InvalidInputError, StoreUnavailableError
from search.retry import Backoff, StoreRefusedError, with_retries
from search.settings import address_without_credentials
from search.stores import (
    check_fusion,
    check_name,
    check_page,
    match_values,
    point_id,
    sparse_values,
    vector_values,
)
from search.stores.base import (
    SPARSE_VECTOR,
    CollectionSpec,
    Condition,
    FieldType,
    Filter,
    Fusion,
    MatchAll,
    MatchAny,
    Point,
    ScoredPoint,
    SparseVector,
)

logger = logging.getLogger(__name__)

# Points per request: about 1 MB of JSON at 384-d, far under the server's
# default 32 MB request limit.
UPSERT_BATCH = 256
# Candidates kept per HNSW search, as in EdgeStore (whose comment has the
# measurements); filtered searches there keep more, a server plans its own.
HNSW_EF = 192
QUANTIZED_SEARCH = models.QuantizationSearchParams(rescore=True, oversampling=2.0)
_SCHEMAS = {
    FieldType.KEYWORD: models.PayloadSchemaType.KEYWORD,
    FieldType.INTEGER: models.PayloadSchemaType.INTEGER,
}
_UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)

P = ParamSpec("P")
T = TypeVar("T")


def _retried(
    method: Callable[Concatenate[ServerStore, P], T],
) -> Callable[Concatenate[ServerStore, P], T]:
    """Try ``method`` again while the server is unreachable (the store's backoff).

    Only for idempotent requests, and never for one another such method
    calls: the tries would multiply.
    """

    @functools.wraps(method)
    def call(store: ServerStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return with_retries(lambda: method(store, *args, **kwargs), store.retry)

    return call


class ServerStore:
    """Collections on a Qdrant server, or in qdrant-client's local mode.

    ``shard_number`` and ``replication_factor`` (None: the server's defaults)
    are passed to collections this store creates. ``on_disk`` keeps their
    vectors and payloads in memory-mapped files instead of RAM (slower searches
    on a cold page cache; HNSW graphs and payload indexes stay in RAM). All
    three apply at creation only: existing collections keep their settings.
    ``retry`` is how often and how long a request is tried while the server
    is unreachable (default: 5 tries, waits of 1, 2, 4, 8 s).
    """

    def __init__(
        self,
        client: QdrantClient,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        on_disk: bool = False,
        retry: Backoff | None = None,
    ) -> None:
        self._client = client
        self.retry = retry or Backoff()
        self._shard_number = shard_number
        self._replication_factor = replication_factor
        self._on_disk = on_disk
        options = client.init_options
        self._local = options.get("location") == ":memory:" or bool(options.get("path"))
        self._where = _describe(options)
        secrets = (options.get("api_key"), urlsplit(str(options.get("url"))).password)
        self._secrets = tuple(s for s in secrets if isinstance(s, str) and s)
        self._dimensions: dict[str, int] = {}
        self._sparse: dict[str, bool] = {}

    @classmethod
    def connect(
        cls,
        url: str,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        timeout_s: int = 10,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        on_disk: bool = False,
        retry: Backoff | None = None,
    ) -> ServerStore:
        """A store on the server at ``url``, checked to answer within ``timeout_s``.

        ``timeout_s`` (seconds, default 10) also bounds every later request.
        The other options are the constructor's. Raises StoreUnavailableError
        when the server does not answer or refuses ``api_key``; neither the key
        nor a password in ``url`` is logged or shown.
        """
        client = QdrantClient(
            url=url,
            api_key=api_key,
            prefer_grpc=prefer_grpc,
            timeout=timeout_s,
            # Its failure is only a warning; reaching the server is checked below.
            check_compatibility=False,
        )
        store = cls(client, shard_number, replication_factor, on_disk, retry)
        try:
            with store._errors():
                version = client.info().version
        except BaseException:
            client.close()
            raise
        logger.info("connected to Qdrant %s at %s", version, store._where)
        return store

    @_retried
    def create_collection(self, name: str, spec: CollectionSpec) -> None:
        """Create ``name`` with cosine vectors and payload indexes; idempotent.

        For an existing collection, creates any payload index it lacks; raises
        InvalidInputError if its dimension differs.
        """
        if spec.dimension < 1:
            raise InvalidInputError("a collection needs a dimension of at least 1")
        with self._errors(check_name(name)):
            if self._client.collection_exists(name):
                indexed = self._check_existing(name, spec)
            else:
                self._client.create_collection(
                    name,
                    vectors_config=models.VectorParams(
                        size=spec.dimension,
                        distance=models.Distance.COSINE,
                        on_disk=self._on_disk,
                    ),
                    sparse_vectors_config={
                        SPARSE_VECTOR: models.SparseVectorParams(
                            index=models.SparseIndexParams(on_disk=self._on_disk),
                            modifier=models.Modifier.IDF,
                        )
                    }
                    if spec.sparse
                    else None,
                    # As in the embedded store: HNSW over int8 copies, rescored.
                    quantization_config=models.ScalarQuantization(
                        scalar=models.ScalarQuantizationConfig(
                            type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                        )
                    ),
                    shard_number=self._shard_number,
                    replication_factor=self._replication_factor,
                    on_disk_payload=self._on_disk,
                )
                indexed = set()
                logger.info("created collection %s on %s", name, self._where)
            self._dimensions[name] = spec.dimension
            self._sparse[name] = spec.sparse or self._sparse.get(name, False)

            for key, field_type in spec.indexes.items():
                if key not in indexed and not self._local:
                    self._client.create_payload_index(
                        name, key, field_schema=_SCHEMAS[field_type], wait=True
                    )

    @_retried
    def collection_exists(self, name: str) -> bool:
        with self._errors():
            return self._client.collection_exists(check_name(name))

    @_retried
    def delete_collection(self, name: str) -> None:
        """Remove ``name`` and its points; nothing happens if it is absent."""
        with self._errors():
            if self._client.collection_exists(check_name(name)):
                self._client.delete_collection(name)
        self._dimensions.pop(name, None)

    @_retried
    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or replace points by id; applied and in the server's WAL on return.

        Sent in requests of ``UPSERT_BATCH`` points, each acknowledged before
        the next.
        """
        dimension = self._dimension(name)
        sparse = self._has_sparse(name)
        structs = [
            models.PointStruct(
                id=point_id(p.id),
                vector=_vectors(p, dimension, sparse),
                payload=p.payload,
            )
            for p in points
        ]
        with self._errors(name):
            for start in range(0, len(structs), UPSERT_BATCH):
                batch = structs[start : start + UPSERT_BATCH]
                self._client.upsert(name, batch, wait=True)

    @_retried
    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete the points with these ids (absent ids are ignored)."""
        selector = models.PointIdsList(points=[point_id(i) for i in ids])
        with self._errors(name):
            self._client.delete(name, points_selector=selector, wait=True)

    @_retried
    def delete_by_filter(self, name: str, filter: Filter) -> None:
        """Delete the points that match ``filter``; an empty filter is refused."""
        server_filter = server_filter_of(filter)
        if server_filter is None:
            raise InvalidInputError("an empty filter would delete every point")
        selector = models.FilterSelector(filter=server_filter)
        with self._errors(name):
            self._client.delete(name, points_selector=selector, wait=True)

    @_retried
    def search(
        self,
        name: str,
        vector: npt.NDArray[np.float32],
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
    ) -> list[ScoredPoint]:
        """The ``top_k`` points closest to ``vector`` after ``offset``, best first."""
        check_page(top_k, offset)
        query = vector_values(vector, self._dimension(name))
        with self._errors(name):
            response = self._client.query_points(
                name,
                query=query,
                query_filter=server_filter_of(filter),
                search_params=self._search_params(top_k + offset),
                limit=top_k,
                offset=offset,
                with_payload=True,
            )
        return _scored(response.points)

    @_retried
    def search_sparse(
        self,
        name: str,
        vector: SparseVector,
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
    ) -> list[ScoredPoint]:
        """The ``top_k`` points of highest IDF-weighted dot product with ``vector``."""
        check_page(top_k, offset)
        self._check_sparse(name)
        with self._errors(name):
            response = self._client.query_points(
                name,
                query=_sparse(vector),
                using=SPARSE_VECTOR,
                query_filter=server_filter_of(filter),
                limit=top_k,
                offset=offset,
                with_payload=True,
            )
        return _scored(response.points)

    @_retried
    def search_hybrid(
        self,
        name: str,
        dense: npt.NDArray[np.float32],
        sparse: SparseVector,
        top_k: int,
        filter: Filter | None = None,
        offset: int = 0,
        *,
        fusion: Fusion = Fusion.RRF,
        rrf_k: int = 60,
        prefetch: int,
    ) -> list[ScoredPoint]:
        """One query: dense and sparse candidates, filtered, fused (RRF or DBSF)."""
        check_page(top_k, offset)
        check_fusion(prefetch, rrf_k)
        self._check_sparse(name)
        server_filter = server_filter_of(filter)
        fused: models.RrfQuery | models.FusionQuery = (
            models.RrfQuery(rrf=models.Rrf(k=rrf_k))
            if fusion is Fusion.RRF
            else models.FusionQuery(fusion=models.Fusion.DBSF)
        )
        with self._errors(name):
            response = self._client.query_points(
                name,
                prefetch=[
                    models.Prefetch(
                        query=vector_values(dense, self._dimension(name)),
                        filter=server_filter,
                        params=self._search_params(prefetch),
                        limit=prefetch,
                    ),
                    models.Prefetch(
                        query=_sparse(sparse),
                        using=SPARSE_VECTOR,
                        filter=server_filter,
                        limit=prefetch,
                    ),
                ],
                query=fused,
                limit=top_k,
                offset=offset,
                with_payload=True,
            )
        return _scored(response.points)

    def _search_params(self, depth: int) -> models.SearchParams | None:
        """HNSW candidates for ``depth`` results, int8 rescored; None in local
        mode, which ignores search parameters (and warns about them)."""
        if self._local:
            return None
        return models.SearchParams(
            hnsw_ef=max(HNSW_EF, depth), quantization=QUANTIZED_SEARCH
        )

    @_retried
    def has_sparse(self, name: str) -> bool:
        return self._has_sparse(name)

    def _has_sparse(self, name: str) -> bool:
        if name not in self._sparse:
            with self._errors(name):
                info = self._client.get_collection(name)
            self._sparse[name] = SPARSE_VECTOR in (
                info.config.params.sparse_vectors or {}
            )
        return self._sparse[name]

    def _check_sparse(self, name: str) -> None:
        if not self._has_sparse(name):
            raise InvalidInputError(
                f"collection {name} has no keyword index (it was made without one)"
            )

    @_retried
    def point_alias(self, alias: str, name: str) -> None:
        """Make ``alias`` name collection ``name``, in one atomic server call
        (the old alias is dropped and the new one made together)."""
        with self._errors(name):
            actions: list[Any] = []
            if self.alias_target(alias) is not None:
                actions.append(
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=alias)
                    )
                )
            actions.append(
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(
                        collection_name=check_name(name), alias_name=alias
                    )
                )
            )
            self._client.update_collection_aliases(change_aliases_operations=actions)

    def alias_target(self, alias: str) -> str | None:
        """The collection ``alias`` names, or None."""
        with self._errors():
            for found in self._client.get_aliases().aliases:
                if found.alias_name == alias:
                    return str(found.collection_name)
        return None

    @_retried
    def count(self, name: str, filter: Filter | None = None) -> int:
        with self._errors(name):
            result = self._client.count(
                name, count_filter=server_filter_of(filter), exact=True
            )
        return result.count

    @_retried
    def facet(
        self, name: str, key: str, filter: Filter | None = None, limit: int = 100
    ) -> dict[str | int, int]:
        """How many points hold each value of ``key`` (array elements counted).

        The ``limit`` most frequent values; a server needs a payload index on
        ``key`` (local mode does not).
        """
        with self._errors(name):
            response = self._client.facet(
                name,
                key,
                facet_filter=server_filter_of(filter),
                limit=limit,
                exact=True,
            )
        return {hit.value: hit.count for hit in response.hits}

    @_retried
    def scroll(
        self,
        name: str,
        filter: Filter | None = None,
        limit: int = 256,
        offset: str | None = None,
    ) -> tuple[list[ScoredPoint], str | None]:
        """A page of points (score 0) ordered by id, and the next page's offset."""
        if limit < 1:
            raise InvalidInputError("a scroll page holds at least 1 point")
        start = None if offset is None else point_id(offset)
        with self._errors(name):
            records, next_id = self._client.scroll(
                name,
                scroll_filter=server_filter_of(filter),
                limit=limit,
                offset=start,
                with_payload=True,
                with_vectors=False,
            )
        page = [ScoredPoint(str(r.id), 0.0, r.payload or {}) for r in records]
        return page, None if next_id is None else str(next_id)

    def close(self) -> None:
        self._client.close()

    def _dimension(self, name: str) -> int:
        if name not in self._dimensions:
            with self._errors(name):
                info = self._client.get_collection(name)
            self._dimensions[name] = _vector_size(name, info)
        return self._dimensions[name]

    def _check_existing(self, name: str, spec: CollectionSpec) -> set[str]:
        """The indexed fields of ``name``, once its dimension is checked."""
        info = self._client.get_collection(name)
        size = _vector_size(name, info)
        if size != spec.dimension:
            raise InvalidInputError(
                f"collection {name} exists with dimension {size}, not {spec.dimension}"
            )
        if spec.sparse and SPARSE_VECTOR not in (
            info.config.params.sparse_vectors or {}
        ):
            raise InvalidInputError(
                f"collection {name} exists without a sparse vector; "
                "a new collection is needed for keyword search"
            )
        return set(info.payload_schema)

    @contextmanager
    def _errors(self, name: str | None = None) -> Iterator[None]:
        """Translate the client's failures into semsearch's errors."""
        try:
            yield
        except ResponseHandlingException as exc:
            # The request did not complete: refused, timed out, name not resolved.
            reason = f"{type(exc.source).__name__}: {exc.source}"
            raise self._unavailable(f"cannot reach {self._where} ({reason})") from None
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                raise self._unavailable(
                    f"{self._where} refused the API key (HTTP {exc.status_code})",
                    StoreRefusedError,
                ) from None
            if exc.status_code == 404 and name is not None:
                raise InvalidInputError(f"no collection named {name!r}") from None
            if exc.status_code == 400:
                raise InvalidInputError(
                    f"{self._where} refused: {_reason(exc)}"
                ) from None
            raise
        except grpc.RpcError as exc:
            code = exc.code()
            if code in _UNAVAILABLE:
                raise self._unavailable(
                    f"cannot reach {self._where} ({code.name})"
                ) from None
            if code in _REFUSED:
                raise self._unavailable(
                    f"{self._where} refused the API key", StoreRefusedError
                ) from None
            if code == grpc.StatusCode.NOT_FOUND and name is not None:
                raise InvalidInputError(f"no collection named {name!r}") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidInputError(
                    f"{self._where} refused: {exc.details()}"
                ) from None
            raise
        except InvalidInputError:
            raise
        except ValueError as exc:
            # Local mode says "Collection <name> not found" with a ValueError.
            if name is None or "not found" not in str(exc):
                raise
            raise InvalidInputError(f"no collection named {name!r}") from None

    def _unavailable(
        self,
        message: str,
        kind: type[StoreUnavailableError] = StoreUnavailableError,
    ) -> StoreUnavailableError:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return kind(f"Qdrant is unavailable: {message}")


def _describe(options: dict[str, Any]) -> str:
    """Where the client points, without credentials, query or fragment."""
    if options.get("location") == ":memory:":
        return "the in-memory Qdrant"
    if options.get("path"):
        return f"the local Qdrant at {options['path']}"
    url = options.get("url") or options.get("location")
    if url:
        where = address_without_credentials(str(url))
        if options.get("prefer_grpc"):
            where += f" (gRPC port {options.get('grpc_port')})"
        return where
    scheme = "https" if options.get("https") else "http"
    port = options.get("grpc_port" if options.get("prefer_grpc") else "port")
    return f"{scheme}://{options.get('host') or 'localhost'}:{port}"


def _vector_size(name: str, info: models.CollectionInfo) -> int:
    params = info.config.params.vectors
    if not isinstance(params, models.VectorParams):
        raise InvalidInputError(f"{name} has named vectors: not a semsearch collection")
    return params.size


def _reason(exc: UnexpectedResponse) -> str:
    try:
        status = exc.structured().get("status", {})
    except Exception:  # not JSON; the status line is reason enough
        return exc.reason_phrase
    return str(
        status.get("error", exc.reason_phrase) if isinstance(status, dict) else status
    )


def server_filter_of(filter: Filter | None) -> models.Filter | None:
    """The qdrant-client filter for ``filter``; None for no filter or an empty one."""
    if not filter:
        return None
    must: list[models.Condition] = []
    for condition in filter.must:
        must.extend(_conditions(condition))
    must_not: list[models.Condition] = []
    for condition in filter.must_not:
        parts = _conditions(condition)
        # must_not excludes a point meeting any entry; MatchAll fails only as a whole.
        must_not.append(parts[0] if len(parts) == 1 else models.Filter(must=parts))
    return models.Filter(must=must or None, must_not=must_not or None)


def _conditions(condition: Condition) -> list[models.Condition]:
    key = condition.key
    if isinstance(condition, MatchAny):
        match = models.MatchAny(any=match_values(condition))
        return [models.FieldCondition(key=key, match=match)]
    if isinstance(condition, MatchAll):
        return [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for value in match_values(condition)
        ]
    interval = models.Range(gte=condition.gte, lte=condition.lte)
    return [models.FieldCondition(key=key, range=interval)]


def _vectors(point: Point, dimension: int, sparse: bool) -> Any:
    dense = vector_values(point.vector, dimension)
    if not sparse:
        return dense
    vectors: dict[str, Any] = {"": dense}
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE_VECTOR] = _sparse(point.sparse)
    return vectors


def _sparse(vector: SparseVector) -> models.SparseVector:
    indices, values = sparse_values(vector)
    return models.SparseVector(indices=indices, values=values)


def _scored(points: list[models.ScoredPoint]) -> list[ScoredPoint]:
    return [ScoredPoint(str(p.id), p.score, p.payload or {}) for p in points]
