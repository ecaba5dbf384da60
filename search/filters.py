"""Search filters and the one function that turns them into a store filter.

Every query path (dense search, counts, facets, and the keyword and hybrid
modes to come) builds its store filter with :func:`build_filter`, so that no
path can forget the access rule: a principal sees the documents of its
groups and the public ones (documents with no group).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from search.errors import InvalidInputError
from search.stores.base import Condition, Filter, MatchAll, MatchAny, Range

PUBLIC = "*"


@dataclass(frozen=True)
class SearchFilters:
    """What a user narrows a search to; empty fields do not filter.

    ``since`` and ``until`` bound the document's date (its own date where the
    file states one, else its modification time), both ends included.
    """

    file_types: tuple[str, ...] = ()
    path_prefix: str | None = None
    tags: tuple[str, ...] = ()
    tags_mode: Literal["any", "all"] = "any"
    since: date | datetime | None = None
    until: date | datetime | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Principal:
    """Who is searching; None in :func:`build_filter` means no restriction."""

    groups: tuple[str, ...] = field(default_factory=tuple)


def build_filter(filters: SearchFilters | None, principal: Principal | None) -> Filter:
    filters = filters or SearchFilters()
    must: list[Condition] = []
    if filters.file_types:
        types = tuple(t.lower().lstrip(".") for t in filters.file_types)
        must.append(MatchAny("file_type", types))
    if filters.path_prefix:
        must.append(MatchAny("path_prefixes", (normalize_prefix(filters.path_prefix),)))
    if filters.tags:
        condition = MatchAll if filters.tags_mode == "all" else MatchAny
        must.append(condition("tags", tuple(filters.tags)))
    if filters.groups:
        must.append(MatchAny("groups", tuple(filters.groups)))

    since = _timestamp(filters.since, end_of_day=False)
    until = _timestamp(filters.until, end_of_day=True)
    if since is not None and until is not None and since > until:
        raise InvalidInputError("the date range is inverted: since is after until")
    if since is not None or until is not None:
        must.append(Range("date", gte=since, lte=until))

    if principal is not None:
        must.append(MatchAny("groups", (*principal.groups, PUBLIC)))
    return Filter(must=tuple(must))


def normalize_prefix(prefix: str) -> str:
    """A folder path as stored in ``path_prefixes``: absolute, no trailing slash."""
    normalized = posixpath.normpath(prefix.replace("\\", "/"))
    return normalized if normalized != "." else "/"


def path_prefixes(path: str) -> list[str]:
    """Every folder above ``path`` and the path itself, for prefix filters."""
    parts = posixpath.normpath(path).split("/")
    prefixes = ["/"] if path.startswith("/") else []
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix:
            prefixes.append(prefix)
    return prefixes


def _timestamp(value: date | datetime | None, end_of_day: bool) -> int | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        clock = datetime.max.time() if end_of_day else datetime.min.time()
        value = datetime.combine(value, clock)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())
