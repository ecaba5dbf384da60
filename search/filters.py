"""Search filters and the one function that turns them into a store filter.

Every query path (dense, keyword and hybrid search, more-like-this, counts)
builds its store filter with :func:`build_filter`, so that no path can forget
the access rule (search.access): the caller's :class:`~search.access.Access`
is a required argument, and the filter values a user typed are checked here.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from search.access import UNGROUPED, Access, Principal, check_group_name
from search.errors import InvalidInputError
from search.stores.base import Condition, Filter, MatchAll, MatchAny, Range

__all__ = ["UNGROUPED", "Principal", "SearchFilters", "build_filter"]

MAX_FILTER_VALUES = 50
MAX_TAG_CHARS = 200
MAX_PATH_CHARS = 4096
_FILE_TYPE = re.compile(r"^[a-z0-9]{1,16}$")


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


def build_filter(filters: SearchFilters | None, access: Access) -> Filter:
    """The store filter of a user's ``filters`` within what ``access`` allows."""
    if not isinstance(access, Access):
        raise TypeError("build_filter needs the caller's Access (search.access)")
    filters = filters or SearchFilters()
    must: list[Condition] = []
    if filters.file_types:
        must.append(MatchAny("file_type", _file_types(filters.file_types)))
    if filters.path_prefix:
        must.append(MatchAny("path_prefixes", (_prefix(filters.path_prefix),)))
    if filters.tags:
        condition = MatchAll if filters.tags_mode == "all" else MatchAny
        must.append(condition("tags", _tags(filters.tags)))
    if filters.tags_mode not in ("any", "all"):
        raise InvalidInputError("tags_mode must be 'any' or 'all'")
    if filters.groups:
        _check_count(filters.groups, "groups")
        groups = tuple(check_group_name(g) for g in filters.groups)
        must.append(MatchAny("groups", groups))

    since = _timestamp(filters.since, end_of_day=False)
    until = _timestamp(filters.until, end_of_day=True)
    if since is not None and until is not None and since > until:
        raise InvalidInputError("the date range is inverted: since is after until")
    if since is not None or until is not None:
        must.append(Range("date", gte=since, lte=until))

    markers = access.store_markers()
    if markers is not None:
        # Nothing readable: a marker no point carries keeps the filter closed.
        must.append(MatchAny("groups", markers or (f"{UNGROUPED}none",)))
    return Filter(must=tuple(must))


def _check_count(values: tuple[str, ...], what: str) -> None:
    if isinstance(values, str):
        raise InvalidInputError(f"{what} must be a list of values, not one string")
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidInputError(f"at most {MAX_FILTER_VALUES} {what} in one filter")


def _file_types(values: tuple[str, ...]) -> tuple[str, ...]:
    _check_count(values, "file types")
    types = []
    for value in values:
        cleaned = str(value).strip().lower().lstrip(".")
        if not _FILE_TYPE.match(cleaned):
            raise InvalidInputError(f"not a file type: {str(value)[:40]!r}")
        types.append(cleaned)
    return tuple(types)


def _tags(values: tuple[str, ...]) -> tuple[str, ...]:
    _check_count(values, "tags")
    for tag in values:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_CHARS:
            raise InvalidInputError(
                f"a tag must be 1 to {MAX_TAG_CHARS} characters: {str(tag)[:40]!r}"
            )
    return tuple(values)


def _prefix(value: str) -> str:
    if len(value) > MAX_PATH_CHARS or "\x00" in value:
        raise InvalidInputError("the folder filter is not a usable path")
    return normalize_prefix(value)


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
