"""Chunk embeddings kept in the catalog, by model, precision and text.

Ingest and ``semsearch eval`` embed chunks through :func:`embed_cached`, and
"more like this" reads a passage's stored vector back by its text hash, so
a text is encoded once per model and precision. fp32 and bf16 vectors of one
text differ a little (cos ~1e-3): each precision keeps its own, so that fp32
stays sentence-transformers' embeddings.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from search.catalog import repository as repo

if TYPE_CHECKING:
    from search.encoder import Encoder

Vectors = dict[str, npt.NDArray[np.float32]]


def text_hash(text: str) -> str:
    """The key of a chunk's text (SHA-256 of its UTF-8 bytes, hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(encoder: Encoder) -> str:
    """The cache's model key: the model and the precision it encodes at."""
    return f"{encoder.identity}@{encoder.precision}"


def embed_cached(
    engine: Engine,
    encoder: Encoder,
    hashes: list[str],
    texts: list[str],
    store: bool = True,
) -> tuple[Vectors, int]:
    """Vectors by text hash for ``texts`` (cache first), and how many were encoded.

    Texts repeated in one call are encoded once; new vectors are stored in
    one commit, unless ``store`` is False (a caller holding SQLite's write
    lock in another session, which the insert would wait on).
    """
    key = cache_key(encoder)
    with Session(engine) as session:
        vectors = repo.get_cached_embeddings(session, key, hashes)
    missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in vectors}
    if missing:
        encoded = encoder.encode(
            list(missing.values()), batch_size=encoder.bulk_batch_size
        )
        new = dict(zip(missing, encoded, strict=True))
        if store:
            with Session(engine) as session:
                repo.put_cached_embeddings(session, key, new)
                session.commit()
        vectors.update(new)
    return vectors, len(missing)
