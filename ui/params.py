"""A search page's state as URL query parameters, and back.

The search page keeps its query and filters in the URL (``?q=...&type=pdf``)
so that a search can be shared as a link. These functions are plain: they
take and return dicts and dataclasses, and are tested without Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from search.errors import InvalidInputError
from search.filters import SearchFilters
from search.retrieval import DEFAULT_MODE, Mode

DEFAULT_TOP_K = 10
MAX_PAGE_TOP_K = 50
# Only a guard on what a link may carry: the searcher cuts queries to the
# SEMSEARCH_MAX_QUERY_CHARS setting, and the page says so.
MAX_QUERY_CHARS = 100_000


@dataclass(frozen=True)
class PageState:
    """What the search page shows: the query, its filters and how many results."""

    query: str = ""
    top_k: int = DEFAULT_TOP_K
    file_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tags_mode: str = "any"
    path_prefix: str = ""
    since: date | None = None
    until: date | None = None
    like: tuple[str, int] | None = None
    mode: str = DEFAULT_MODE.value
    problems: tuple[str, ...] = field(default=(), compare=False)

    def filters(self) -> SearchFilters:
        """The filters to search with; an inverted date range is refused."""
        if self.since and self.until and self.since > self.until:
            raise InvalidInputError(
                f"the date range is inverted: {self.since} is after {self.until}"
            )
        return SearchFilters(
            file_types=self.file_types,
            path_prefix=self.path_prefix or None,
            tags=self.tags,
            tags_mode="all" if self.tags_mode == "all" else "any",
            since=self.since,
            until=self.until,
        )

    @property
    def filtered(self) -> bool:
        return bool(
            self.file_types or self.tags or self.path_prefix or self.since or self.until
        )


def from_query_params(params: Mapping[str, str | list[str]]) -> PageState:
    """Read the state from URL parameters; bad values are dropped and named."""
    problems: list[str] = []

    def one(key: str) -> str:
        value = params.get(key, "")
        return (value[-1] if value else "") if isinstance(value, list) else value

    def many(key: str) -> tuple[str, ...]:
        value = params.get(key, [])
        values = [value] if isinstance(value, str) else value
        return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))

    top_k = DEFAULT_TOP_K
    if one("k"):
        try:
            top_k = int(one("k"))
        except ValueError:
            problems.append(f"k={one('k')!r} is not a number")
        if not 1 <= top_k <= MAX_PAGE_TOP_K:
            problems.append(f"k must be between 1 and {MAX_PAGE_TOP_K}")
            top_k = min(max(top_k, 1), MAX_PAGE_TOP_K)

    def day(key: str) -> date | None:
        text = one(key)
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            problems.append(f"{key}={text!r} is not a date (YYYY-MM-DD)")
            return None

    mode = one("mode") or DEFAULT_MODE.value
    if mode not in {m.value for m in Mode}:
        problems.append(f"mode={mode!r} is not dense, keyword or hybrid")
        mode = DEFAULT_MODE.value

    like = None
    if one("like"):
        document_id, _, ordinal = one("like").rpartition(":")
        if document_id and ordinal.isdigit():
            like = (document_id, int(ordinal))
        else:
            problems.append("the more-like-this link is malformed")

    return PageState(
        query=one("q")[:MAX_QUERY_CHARS],
        top_k=top_k,
        file_types=tuple(t.lower().lstrip(".") for t in many("type")),
        tags=many("tag"),
        tags_mode="all" if one("tags") == "all" else "any",
        path_prefix=one("path"),
        since=day("since"),
        until=day("until"),
        like=like,
        mode=mode,
        problems=tuple(problems),
    )


def to_query_params(state: PageState) -> dict[str, str | list[str]]:
    """URL parameters for ``state``; defaults are left out to keep links short."""
    params: dict[str, str | list[str]] = {}
    if state.query:
        params["q"] = state.query
    if state.top_k != DEFAULT_TOP_K:
        params["k"] = str(state.top_k)
    if state.file_types:
        params["type"] = list(state.file_types)
    if state.tags:
        params["tag"] = list(state.tags)
        if state.tags_mode == "all":
            params["tags"] = "all"
    if state.path_prefix:
        params["path"] = state.path_prefix
    if state.since:
        params["since"] = state.since.isoformat()
    if state.until:
        params["until"] = state.until.isoformat()
    if state.like:
        params["like"] = f"{state.like[0]}:{state.like[1]}"
    if state.mode != DEFAULT_MODE.value:
        params["mode"] = state.mode
    return params
