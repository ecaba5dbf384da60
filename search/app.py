"""The parts of a running semsearch, opened from settings and shared.

The CLI, the worker and the UI each hold one :class:`App`: the encoder, the
catalog engine and the vector store are opened on first use and kept. The
embedded store can be open in one process at a time: :mod:`search.locking`
holds a lock file in the data dir that also names the holder, so that another
command can say which process holds it and what to do.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from search.locking import ProcessLock
from search.settings import Settings
from search.stores.base import CollectionSpec, FieldType, VectorStore

if TYPE_CHECKING:
    from search.active_index import ActiveIndex
    from search.encoder import Encoder

logger = logging.getLogger(__name__)

INDEXED_FIELDS = {
    "doc_id": FieldType.KEYWORD,
    "version": FieldType.KEYWORD,
    "file_type": FieldType.KEYWORD,
    "tags": FieldType.KEYWORD,
    "groups": FieldType.KEYWORD,
    "path_prefixes": FieldType.KEYWORD,
    "date": FieldType.INTEGER,
}


# What a collection's points hold; a new format gets new collections and new
# document versions, so the next ingest rebuilds the index (embeddings come
# from the cache). 2: a BM25 sparse vector beside the dense one.
INDEX_FORMAT = 2


def slug(name: str) -> str:
    """``name`` in lowercase letters, digits and dashes, for collection names."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def collection_name(model: str) -> str:
    """One collection per model: a new model never mixes with the old vectors.

    ``model`` is best the model's identity (search.models.model_identity),
    which tells two trainings of one folder apart.
    """
    return f"chunks-v{INDEX_FORMAT}-{slug(Path(model).name) or 'model'}"


class App:
    def __init__(
        self,
        settings: Settings | None = None,
        role: str = "cli",
        store: VectorStore | None = None,
    ) -> None:
        """``store`` replaces the one the settings select (tests, embedding)."""
        self.settings = settings or Settings()
        if store is not None:
            self.__dict__["store"] = store
        self.role = role
        self._lock = ProcessLock(self.settings.data_dir / "store.lock")
        self._active: ActiveIndex | None = None
        self._warned_model: str | None = None
        # Encoders of other indexes than the active one (a reindex's target,
        # the index before a switch), by identity.
        self._other_encoders: dict[str, Encoder] = {}
        self._encoders_lock = threading.Lock()

    # -- the active index: model and collection ----------------------------

    @property
    def active(self) -> ActiveIndex:
        """The model and collection searches use (read once; see refresh_active)."""
        if self._active is None:
            self._active = self._read_active()
        return self._active

    @property
    def collection(self) -> str:
        return self.active.collection

    def refresh_active(self) -> bool:
        """Read the catalog's active index again; True when it changed.

        Long-running processes (the UI, workers between jobs) call this; the
        new model is loaded on its first use.
        """
        latest = self._read_active()
        if latest == self._active:
            return False
        self.use_active(latest)
        return True

    def use_active(self, active: ActiveIndex) -> None:
        """Work on ``active`` from now on (its encoder loaded on first use)."""
        with self._encoders_lock:
            previous = self._active
            self._active = active
            if previous is None or previous.identity == active.identity:
                return
            loaded = self.__dict__.pop("encoder", None)
            self.__dict__.pop("chunk_sizes", None)
            ready = self._other_encoders.pop(active.identity, None)
            # Keep one other: the index before the switch, for searches on it.
            self._other_encoders = (
                {previous.identity: loaded} if loaded is not None else {}
            )
            if ready is not None:
                self.__dict__["encoder"] = ready

    def encoder_for(self, index: ActiveIndex) -> Encoder:
        """The encoder of ``index``: the active one's, or one loaded for it."""
        if index.identity == self.active.identity:
            return self.encoder
        from search.encoder import Encoder

        with self._encoders_lock:
            found = self._other_encoders.get(index.identity)
            if found is None:
                s = self.settings
                found = Encoder(index.model, device=s.device, precision=s.precision)
                self._other_encoders = {index.identity: found}
            return found

    def _read_active(self) -> ActiveIndex:
        from search.active_index import ActiveIndex, index_for, load_active

        recorded = load_active(self.engine)
        configured = self.settings.model
        if recorded is None:
            loaded = self.__dict__.get("encoder")  # its identity is known
            if loaded is None:
                index = index_for(configured)
            else:
                index = ActiveIndex(
                    configured, loaded.identity, collection_name(loaded.identity)
                )
            legacy = collection_name(configured)
            if legacy != index.collection and self._has_documents():
                # Indexed before the catalog recorded its index (revision
                # 0006): the collection was named after the model as given.
                index = replace(index, collection=legacy)
            return index
        explicit = "model" in self.settings.model_fields_set
        if (
            explicit
            and configured != recorded.model
            and self._warned_model != configured
        ):
            if index_for(configured).identity != recorded.identity:
                logger.warning(
                    "SEMSEARCH_MODEL=%s is not the index's model (%s): searches "
                    "and ingests use %s; switch with `semsearch reindex --model %s`",
                    configured,
                    recorded.model,
                    recorded.model,
                    configured,
                )
            self._warned_model = configured
        return recorded

    def _has_documents(self) -> bool:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from search.catalog.models import Document

        with Session(self.engine) as session:
            return session.scalar(select(Document.id).limit(1)) is not None

    def record_active(self) -> None:
        """Record the active index in the catalog if no index is recorded yet
        (the first ingest's collection is then the live one by name)."""
        from sqlalchemy.exc import IntegrityError
        from sqlalchemy.orm import Session

        from search.active_index import read_active, write_active

        with Session(self.engine) as session:
            if read_active(session) is not None:
                return
            write_active(session, self.active)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # another process recorded it first
        self.refresh_active()

    @cached_property
    def encoder(self) -> Encoder:
        from search.encoder import Encoder

        s = self.settings
        return Encoder(self.active.model, device=s.device, precision=s.precision)

    @cached_property
    def chunk_sizes(self) -> tuple[int, int]:
        return self.chunk_sizes_for(self.encoder)

    def chunk_sizes_for(self, encoder: Encoder) -> tuple[int, int]:
        """Chunk size and overlap in model tokens: the settings', within the
        model's window (less its special tokens), the overlap under half."""
        size = min(
            self.settings.chunk_tokens, encoder.max_seq_length - encoder.special_tokens
        )
        return size, min(self.settings.chunk_overlap, size // 2 - 1)

    @cached_property
    def engine(self) -> Engine:
        from search.catalog.engine import open_catalog

        return open_catalog(self.settings)

    @cached_property
    def store(self) -> VectorStore:
        s = self.settings
        if not s.embedded_store:
            from search.retry import Backoff
            from search.stores.server import ServerStore

            return ServerStore.connect(
                url=s.qdrant_url or "",
                api_key=s.qdrant_api_key.get_secret_value()
                if s.qdrant_api_key
                else None,
                prefer_grpc=s.qdrant_prefer_grpc,
                shard_number=s.qdrant_shard_number,
                replication_factor=s.qdrant_replication_factor,
                on_disk=s.qdrant_on_disk,
                retry=Backoff.from_settings(s),
            )
        from search.stores.edge import EdgeStore

        self._lock.acquire(self.role)
        try:
            return EdgeStore(s.store_dir, hnsw_threshold=s.hnsw_threshold)
        except BaseException:
            self._lock.release()
            raise

    def ensure_collection(
        self, index: ActiveIndex | None = None, encoder: Encoder | None = None
    ) -> None:
        """Create ``index``'s collection (default: the active one's) for
        ``encoder``'s vectors if absent; record the active index if the
        catalog has none yet."""
        name = index.collection if index is not None else self.collection
        self.store.create_collection(name, self.collection_spec(encoder))
        self.record_active()

    def collection_spec(self, encoder: Encoder | None = None) -> CollectionSpec:
        """What a collection for ``encoder`` (default: the active one) holds."""
        dimension = (encoder or self.encoder).dimension
        return CollectionSpec(dimension=dimension, indexes=INDEXED_FIELDS, sparse=True)

    def read_owner(self) -> dict[str, Any] | None:
        """Who holds the embedded store now (pid, role), if anyone said so."""
        return self._lock.holder()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
            self._lock.release()
            del self.__dict__["store"]
        if "engine" in self.__dict__:
            self.engine.dispose()
            del self.__dict__["engine"]
