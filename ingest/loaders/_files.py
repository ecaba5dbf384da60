"""File-system edges shared by the loaders: stat, open and read, with errors
turned into :class:`~ingest.documents.LoadError` reasons.

A file can change between the walk and the load (deleted, made unreadable);
these helpers are where that shows, so every loader reports it the same way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ingest.documents import Limits, LoadError
from ingest.loaders._limits import check_size, grew_past

# Bytes examined for NUL bytes when deciding whether a file is binary.
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class FileFacts:
    """What the file system says about a file: size in bytes and mtime (UTC)."""

    size_bytes: int
    modified_at: datetime
    mtime_ns: int


def load_error(exc: OSError, path: Path) -> LoadError:
    """The reason to show for an OS error met while reading ``path``."""
    if isinstance(exc, PermissionError):
        return LoadError("permission denied", path)
    if isinstance(exc, FileNotFoundError):
        return LoadError("file vanished", path)
    if isinstance(exc, IsADirectoryError):
        return LoadError("not a file", path)
    return LoadError(f"cannot read: {exc.strerror or exc}", path)


def facts_of(info: os.stat_result) -> FileFacts:
    """:class:`FileFacts` from a stat result."""
    modified = datetime.fromtimestamp(info.st_mtime, tz=UTC)
    return FileFacts(info.st_size, modified, info.st_mtime_ns)


@contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading bytes; OS errors on open become LoadError."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise load_error(exc, path) from exc
    with handle:
        yield handle


@dataclass(frozen=True)
class WholeFile:
    """A file read whole: its bytes, their SHA-256 hex digest, and its facts."""

    data: bytes
    content_hash: str
    facts: FileFacts


def read_whole(path: Path, limits: Limits) -> WholeFile:
    """Read ``path`` whole, for the formats that are parsed whole.

    Markdown, HTML, PDF and DOCX are held in memory once, so the file's size is
    the memory cost; the plain-text loader streams instead. A file over
    ``limits.max_bytes`` by its stat is refused before any read, and the read
    stops one byte past the limit, should the file have grown since.
    """
    with open_binary(path) as handle:
        try:
            facts = facts_of(os.fstat(handle.fileno()))
            check_size(facts.size_bytes, limits, path)
            data = handle.read(limits.max_bytes + 1)
        except OSError as exc:
            raise load_error(exc, path) from exc
    if len(data) > limits.max_bytes:
        raise grew_past(limits, path)
    return WholeFile(data, hashlib.sha256(data).hexdigest(), facts)


def looks_binary(head: bytes) -> bool:
    """True when the first bytes of a file hold a NUL byte.

    Only meaningful for files without a UTF-16/32 byte order mark, whose text
    naturally holds NUL bytes.
    """
    return b"\x00" in head[:SNIFF_BYTES]
