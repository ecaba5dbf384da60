"""semsearch's search library: encoder, stores, catalog, retrieval.

The public names are re-exported here and imported on first use, so that
``import search`` (and the CLI's ``--help``) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.access import Principal
    from search.adapters import EncoderEmbeddings
    from search.encoder import Encoder, EncodeStats
    from search.errors import (
        InvalidInputError,
        ModelConfigError,
        ModelNotFoundError,
        SemsearchError,
    )
    from search.filters import SearchFilters
    from search.grouping import DocumentResult
    from search.models import DEFAULT_MODEL
    from search.retrieval import Hit, Searcher, search
    from search.similarity import cos_sim, dot_score, semantic_search

_EXPORTS = {
    "DEFAULT_MODEL": "search.models",
    "DocumentResult": "search.grouping",
    "EncodeStats": "search.encoder",
    "Encoder": "search.encoder",
    "EncoderEmbeddings": "search.adapters",
    "InvalidInputError": "search.errors",
    "ModelConfigError": "search.errors",
    "ModelNotFoundError": "search.errors",
    "SemsearchError": "search.errors",
    "Hit": "search.retrieval",
    "Principal": "search.access",
    "SearchFilters": "search.filters",
    "Searcher": "search.retrieval",
    "search": "search.retrieval",
    "cos_sim": "search.similarity",
    "dot_score": "search.similarity",
    "semantic_search": "search.similarity",
}

__all__ = [
    "DEFAULT_MODEL",
    "DocumentResult",
    "EncodeStats",
    "Encoder",
    "EncoderEmbeddings",
    "Hit",
    "InvalidInputError",
    "ModelConfigError",
    "ModelNotFoundError",
    "Principal",
    "SearchFilters",
    "Searcher",
    "SemsearchError",
    "cos_sim",
    "dot_score",
    "search",
    "semantic_search",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
