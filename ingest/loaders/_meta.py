"""Metadata values as formats hand them over, made uniform.

Front matter, HTML meta tags, PDF info and DOCX core properties all carry
tags, authors and dates in loose shapes (a list or a comma string, a date or
a string); these helpers turn them into the types of
:class:`~ingest.documents.LoadedDocument`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

_TAG_SEPARATORS = re.compile(r"[,;]")


@dataclass(frozen=True)
class Metadata:
    """A document's own metadata; ``date`` is UTC-aware. Empty by default."""

    title: str | None = None
    author: str | None = None
    tags: list[str] = field(default_factory=list)
    date: datetime | None = None
    groups: list[str] = field(default_factory=list)


def clean_text(value: object) -> str | None:
    """A scalar as one line of text with whitespace collapsed, or None if blank."""
    if value is None or isinstance(value, dict | list | tuple | set):
        return None
    text = " ".join(str(value).split())
    return text or None


def authors(value: object) -> str | None:
    """One author string: a list of names is joined with ", "."""
    if isinstance(value, list | tuple):
        names = [name for item in value if (name := clean_text(item))]
        return ", ".join(names) or None
    return clean_text(value)


def split_tags(value: object) -> list[str]:
    """Tags from a list, or from a string separated by commas or semicolons.

    Blank tags are dropped and repeats removed, keeping first-seen order.
    """
    if isinstance(value, list | tuple | set):
        items = [clean_text(item) for item in value]
    elif isinstance(value, str):
        items = [clean_text(item) for item in _TAG_SEPARATORS.split(value)]
    else:
        items = [clean_text(value)]
    return list(dict.fromkeys(tag for tag in items if tag))


def as_utc(value: object) -> datetime | None:
    """A date, datetime or ISO 8601 string as a UTC-aware datetime, else None.

    A date alone means midnight UTC; a datetime without a zone is taken as UTC.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    return None
