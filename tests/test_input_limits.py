"""What a user types is bounded: filter values (search.filters.build_filter)
and the query's length (search.retrieval.bound_query).

Every bad value is an InvalidInputError whose message says what is wrong
and quotes at most a short piece of the value.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search.access import MAX_GROUP_CHARS, Access
from search.errors import InvalidInputError
from search.filters import (
    MAX_FILTER_VALUES,
    MAX_PATH_CHARS,
    MAX_TAG_CHARS,
    SearchFilters,
    build_filter,
)
from search.retrieval import DEFAULT_MAX_QUERY_CHARS, bound_query
from search.stores.base import MatchAll, MatchAny

PUBLIC = Access(ungrouped=True)


def with_field(field: str, values: Any) -> SearchFilters:
    """Filters with one field set, to any value (the bad ones too)."""
    fields: dict[str, Any] = {field: values}
    return SearchFilters(**fields)


def refused(filters: SearchFilters) -> str:
    """The message build_filter refuses ``filters`` with."""
    with pytest.raises(InvalidInputError) as caught:
        build_filter(filters, PUBLIC)
    return str(caught.value)


# File types.


def test_file_types_are_normalized() -> None:
    built = build_filter(SearchFilters(file_types=("PDF", ".Md", " docx ")), PUBLIC)
    assert MatchAny("file_type", ("pdf", "md", "docx")) in built.must


@pytest.mark.parametrize(
    "value", ["", "p df", "x" * 17, "../etc", "pdf;drop", "pdf\x00", "é"]
)
def test_a_bad_file_type_is_refused(value: str) -> None:
    message = refused(SearchFilters(file_types=(value,)))
    assert message.startswith("not a file type: ")


def test_a_long_bad_value_is_quoted_short() -> None:
    message = refused(SearchFilters(file_types=("?" * 10_000,)))
    assert message == f"not a file type: {'?' * 40!r}"


# How many values one filter takes.


@pytest.mark.parametrize(
    ("field", "what", "value"),
    [
        ("file_types", "file types", "pdf"),
        ("tags", "tags", "tag"),
        ("groups", "groups", "staff"),
    ],
)
def test_at_most_50_values(field: str, what: str, value: str) -> None:
    fifty = tuple(f"{value}{i}" if field != "file_types" else value for i in range(50))
    build_filter(with_field(field, fifty), PUBLIC)

    message = refused(with_field(field, (*fifty, value)))
    assert message == f"at most {MAX_FILTER_VALUES} {what} in one filter"


@pytest.mark.parametrize(
    ("field", "what"),
    [("file_types", "file types"), ("tags", "tags"), ("groups", "groups")],
)
def test_one_string_is_not_a_list_of_values(field: str, what: str) -> None:
    # A string is a sequence of letters: "pdf" must not mean "p", "d", "f".
    message = refused(with_field(field, "pdf"))
    assert message == f"{what} must be a list of values, not one string"


# Tags.


def test_tags_up_to_200_characters_are_kept() -> None:
    tag = "t" * MAX_TAG_CHARS
    built = build_filter(SearchFilters(tags=(tag, "b"), tags_mode="all"), PUBLIC)
    assert MatchAll("tags", (tag, "b")) in built.must


@pytest.mark.parametrize("tag", ["", "   ", "t" * (MAX_TAG_CHARS + 1), 42], ids=repr)
def test_a_bad_tag_is_refused(tag: Any) -> None:
    message = refused(SearchFilters(tags=(tag,)))
    assert message.startswith(f"a tag must be 1 to {MAX_TAG_CHARS} characters: ")
    assert len(message) < 100


def test_tags_mode_is_any_or_all() -> None:
    mode: Any = "some"
    message = refused(SearchFilters(tags=("a",), tags_mode=mode))
    assert message == "tags_mode must be 'any' or 'all'"


# The folder filter.


def test_a_path_prefix_up_to_the_limit_is_normalized() -> None:
    built = build_filter(SearchFilters(path_prefix="/docs//2024/"), PUBLIC)
    assert MatchAny("path_prefixes", ("/docs/2024",)) in built.must
    long = "/" + "d" * (MAX_PATH_CHARS - 1)
    build_filter(SearchFilters(path_prefix=long), PUBLIC)


@pytest.mark.parametrize(
    "prefix",
    ["/" + "d" * MAX_PATH_CHARS, "/docs\x00/x"],
    ids=["too-long", "nul-byte"],
)
def test_a_bad_path_prefix_is_refused(prefix: str) -> None:
    message = refused(SearchFilters(path_prefix=prefix))
    assert message == "the folder filter is not a usable path"


# Group names (search.access.check_group_name).


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ("", "a group name is empty"),
        ("   ", "a group name is empty"),
        ("*", "'*' is reserved and cannot be a group"),
        (
            "g" * (MAX_GROUP_CHARS + 1),
            f"a group name is longer than {MAX_GROUP_CHARS} characters",
        ),
        ("staff,admins", "group 'staff,admins' holds a comma or a control character"),
        ("st\x07aff", "group 'st\\x07aff' holds a comma or a control character"),
        (7, "a group name must be text, not 7"),
    ],
    ids=["empty", "blank", "reserved", "long", "comma", "control", "not-text"],
)
def test_a_bad_group_name_is_refused(group: Any, message: str) -> None:
    assert refused(SearchFilters(groups=(group,))) == message


def test_group_names_are_stripped() -> None:
    built = build_filter(SearchFilters(groups=(" staff ",)), PUBLIC)
    assert MatchAny("groups", ("staff",)) in built.must


# Dates and access.


def test_an_inverted_date_range_is_refused() -> None:
    filters = SearchFilters(since=date(2024, 5, 2), until=date(2024, 5, 1))
    assert refused(filters) == "the date range is inverted: since is after until"


def test_build_filter_needs_an_access() -> None:
    nobody: Any = None
    with pytest.raises(TypeError, match="needs the caller's Access"):
        build_filter(SearchFilters(), nobody)


# The query's length.


def test_a_short_query_is_kept_stripped() -> None:
    assert bound_query("  rivers and snow \n") == ("rivers and snow", False)


def test_a_query_of_exactly_the_limit_is_kept() -> None:
    query = "x" * DEFAULT_MAX_QUERY_CHARS
    assert bound_query(query) == (query, False)


def test_a_long_query_is_cut_at_a_word_boundary() -> None:
    query = "glacier " * 200
    text, truncated = bound_query(query, 100)
    assert truncated
    assert len(text) <= 100
    assert query.startswith(text)
    assert text.endswith("glacier")
    assert query[len(text)] == " "


def test_a_long_word_is_cut_at_the_limit() -> None:
    # No space in the second half: cutting at one would lose too much.
    query = "a " + "x" * 500
    assert bound_query(query, 100) == (query[:100], True)


def test_the_query_must_be_text() -> None:
    query: Any = ["hello"]
    with pytest.raises(InvalidInputError, match=r"^the query must be text$"):
        bound_query(query)


_QUERY_TEXT = st.text(
    alphabet=st.sampled_from(["a", "b", " ", "\n", "\t", "é", "\u3000"]), max_size=300
)


@given(query=st.one_of(_QUERY_TEXT, st.text(max_size=300)), limit=st.integers(1, 200))
def test_bound_query_never_exceeds_the_limit(query: str, limit: int) -> None:
    text, truncated = bound_query(query, limit)
    stripped = query.strip()

    assert len(text) <= limit
    assert stripped.startswith(text)
    if len(stripped) <= limit:
        assert (text, truncated) == (stripped, False)
    else:
        assert truncated
        assert text
        # Cut where a word ends, or hard at the limit inside a long word.
        assert len(text) == limit or stripped[len(text)].isspace()
