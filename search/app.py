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
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from search.locking import ProcessLock
from search.settings import Settings
from search.stores.base import CollectionSpec, FieldType, VectorStore

if TYPE_CHECKING:
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
    """One collection per model: a new model never mixes with the old vectors."""
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
        self.collection = collection_name(self.settings.model)
        self._lock = ProcessLock(self.settings.data_dir / "store.lock")

    @cached_property
    def encoder(self) -> Encoder:
        from search.encoder import Encoder

        s = self.settings
        return Encoder(s.model, device=s.device, precision=s.precision)

    @cached_property
    def chunk_sizes(self) -> tuple[int, int]:
        """Chunk size and overlap in model tokens: the settings', within the
        model's window (less its special tokens), the overlap under half."""
        encoder = self.encoder
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

    def ensure_collection(self) -> None:
        spec = CollectionSpec(
            dimension=self.encoder.dimension, indexes=INDEXED_FIELDS, sparse=True
        )
        self.store.create_collection(self.collection, spec)

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
