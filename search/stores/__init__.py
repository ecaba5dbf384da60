"""Vector stores behind one interface (:mod:`search.stores.base`).

:class:`EdgeStore` keeps collections in this process on disk (qdrant-edge);
:class:`ServerStore` talks to a Qdrant server (qdrant-client). Both are
imported on first use, so that the embedded store never pays for importing
qdrant-client (about 1.7 s). The checks below are shared by both, so that
they refuse the same inputs with the same messages.
"""

from __future__ import annotations

import importlib
import math
import re
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from search.errors import InvalidInputError
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
    Range,
    ScoredPoint,
    SparseVector,
    VectorStore,
)

if TYPE_CHECKING:
    from search.stores.edge import EdgeStore
    from search.stores.server import ServerStore

__all__ = [
    "SPARSE_VECTOR",
    "CollectionSpec",
    "Condition",
    "EdgeStore",
    "FieldType",
    "Filter",
    "Fusion",
    "MatchAll",
    "MatchAny",
    "Point",
    "Range",
    "ScoredPoint",
    "ServerStore",
    "SparseVector",
    "VectorStore",
]

_LAZY = {"EdgeStore": "search.stores.edge", "ServerStore": "search.stores.server"}
# Collection names become folder names (edge) and URL segments (server).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'search.stores' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def check_name(name: str) -> str:
    """``name`` if it is a valid collection name: 1-128 letters, digits, ``_.-``."""
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 1-128 letters, digits, '_', '.' "
            "or '-', starting with a letter or digit"
        )
    return name


def point_id(value: str) -> str:
    """The canonical (lower-case, hyphenated) form of a UUID point id."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInputError(f"point ids are UUID strings, not {value!r}") from exc


def vector_values(vector: npt.ArrayLike, dimension: int) -> list[float]:
    """``vector`` as a list of floats, if it has ``dimension`` finite values, not all 0.

    A zero vector has no cosine similarity: the engines would score it NaN.
    """
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dimension,):
        raise InvalidInputError(
            f"expected a vector of {dimension} values, got shape {array.shape}"
        )
    if not np.isfinite(array).all() or not array.any():
        raise InvalidInputError("a vector must be finite and not all zeros")
    values: list[float] = array.tolist()
    return values


def match_values(condition: MatchAny | MatchAll) -> list[str] | list[int]:
    """The condition's values, checked to be all strings or all integers."""
    strings = [v for v in condition.values if isinstance(v, str)]
    if len(strings) == len(condition.values):
        return strings
    integers = [v for v in condition.values if type(v) is int]
    if len(integers) == len(condition.values):
        return integers
    raise InvalidInputError(
        f"{condition.key}: match values must be all strings or all integers"
    )


def sparse_values(vector: SparseVector) -> tuple[list[int], list[float]]:
    """A sparse vector's indices and values, checked: distinct 32-bit ids, finite."""
    indices = list(vector.indices)
    if len(set(indices)) != len(indices):
        raise InvalidInputError("a sparse vector's indices must be distinct")
    if any(not 0 <= i < 2**32 for i in indices):
        raise InvalidInputError("sparse vector indices must be 32-bit unsigned")
    values = [float(v) for v in vector.values]
    if not all(math.isfinite(v) for v in values):
        raise InvalidInputError("sparse vector values must be finite")
    return indices, values


def check_page(top_k: int, offset: int) -> None:
    """A search asks for at least one point, from a rank that exists."""
    if top_k < 1 or offset < 0:
        raise InvalidInputError("top_k must be at least 1 and offset at least 0")


def check_fusion(prefetch: int, rrf_k: int) -> None:
    if prefetch < 1 or rrf_k < 1:
        raise InvalidInputError("prefetch and rrf_k must be at least 1")
