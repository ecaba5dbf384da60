"""The reasons a loader gives when a file is beyond its
:class:`~ingest.documents.Limits`.

Each reason names the limit and the setting that sets it, so that whoever
reads the ingest summary knows what to raise, for example
``"file is 312.4 MB, over the 200 MB limit (SEMSEARCH_MAX_FILE_MB)"``.
Sizes are in MB of 1024 * 1024 bytes, as the setting is.
"""

from __future__ import annotations

from pathlib import Path

from ingest.documents import Limits, LoadError

SIZE_SETTING = "SEMSEARCH_MAX_FILE_MB"
PAGES_SETTING = "SEMSEARCH_MAX_PAGES"

_MB = 1024 * 1024
# Limits under a megabyte (tests, mostly) read better in bytes.
_BYTES_BELOW = _MB


def check_size(
    size_bytes: int, limits: Limits, path: Path, subject: str = "file is"
) -> None:
    """Refuse ``size_bytes`` over ``limits.max_bytes``; ``subject`` starts the
    reason ("file is", "DOCX expands to")."""
    if size_bytes <= limits.max_bytes:
        return
    size, limit = _sizes(size_bytes, limits.max_bytes)
    raise LoadError(f"{subject} {size}, over the {limit} limit ({SIZE_SETTING})", path)


def grew_past(limits: Limits, path: Path) -> LoadError:
    """The error for a file that passed the size check, then grew while read."""
    _, limit = _sizes(limits.max_bytes, limits.max_bytes)
    return LoadError(
        f"file grew past the {limit} limit while read ({SIZE_SETTING})", path
    )


def check_pages(count: int, limits: Limits, path: Path) -> None:
    """Refuse a PDF of more than ``limits.max_pages`` pages."""
    if count > limits.max_pages:
        raise LoadError(
            f"PDF has {count} pages, over the {limits.max_pages} page limit "
            f"({PAGES_SETTING})",
            path,
        )


def _sizes(size_bytes: int, limit_bytes: int) -> tuple[str, str]:
    """The size and the limit in one unit, the size shown precisely enough
    that it reads as more than the limit (1.005 MB, not 1.0 MB, over 1 MB)."""
    if limit_bytes < _BYTES_BELOW:
        return f"{size_bytes} bytes", f"{limit_bytes} byte"
    size_mb, limit_mb = size_bytes / _MB, limit_bytes / _MB
    for digits in (1, 2, 3, 4):
        shown = f"{size_mb:.{digits}f}"
        if float(shown) > limit_mb:
            break
    return f"{shown} MB", f"{_number(limit_mb)} MB"


def _number(value: float) -> str:
    """``value`` without trailing zeros: 200, 0.5, 1.25."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
