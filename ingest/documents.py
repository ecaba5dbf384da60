"""What a loader hands to the rest of the ingest worker.

A *document* is one source file. Its text reaches the chunker as
:class:`Segment` values: contiguous pieces that, joined in order, give the
document text exactly, each carrying the character offset where it starts and,
for PDFs, its page. Streaming formats (plain text) produce segments lazily, so
a large file is never held whole; formats parsed whole give a list.

Every loader failure a user can cause (an unreadable, empty, binary or corrupt
file) is a :class:`LoadError`, a :class:`~search.errors.SemsearchError` whose
message is a short reason meant to be shown as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from search.errors import SemsearchError


class LoadError(SemsearchError):
    """A file could not be turned into a document; the message says why.

    The reason is short and names no document text, for example
    ``"binary file"``, ``"empty file"``, ``"permission denied"``,
    ``"file vanished"`` or ``"corrupt PDF: <what pypdf said>"``. ``path`` is the
    file concerned, when known.
    """

    def __init__(self, reason: str, path: Path | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


@dataclass(frozen=True)
class Limits:
    """How much of a file a loader accepts; a file beyond them is a LoadError.

    ``max_bytes`` (settings: SEMSEARCH_MAX_FILE_MB, default 200 MB) bounds the
    file's size, checked from stat before any read, and for a DOCX also the
    size its zip members expand to. ``max_pages`` (SEMSEARCH_MAX_PAGES, default
    5000) bounds a PDF's page count, checked before any text is extracted. The
    formats parsed whole hold about their size in memory, and PDF and DOCX
    parsers several times that, so ``max_bytes`` is also the memory bound.
    """

    max_bytes: int = 200 * 1024 * 1024
    max_pages: int = 5000

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pages < 1:
            raise ValueError(
                f"limits must be positive, got max_bytes={self.max_bytes}, "
                f"max_pages={self.max_pages}"
            )


@dataclass(frozen=True)
class Segment:
    """A piece of a document's text.

    ``start`` is the offset, in characters (code points), of ``text`` in the
    whole document text; segment *k + 1* starts where segment *k* ends.
    ``page`` is the 1-based page number for paginated formats (PDF), else None.
    """

    text: str
    start: int
    page: int | None = None

    @property
    def end(self) -> int:
        """Offset just past the segment's last character."""
        return self.start + len(self.text)


@dataclass
class LoadedDocument:
    """One file, read: its metadata and its text as segments.

    ``file_type`` is the canonical lowercase extension (``txt``, ``md``,
    ``html``, ``pdf``, ``docx``), whatever the file's own spelling
    (``.markdown``, ``.htm``, ``.text``). ``title`` falls back to the file stem.
    ``date`` comes from the document's own metadata (front matter, core
    properties), UTC-aware, else None; ``modified_at`` is the file's mtime in
    UTC. ``content_hash`` is the SHA-256 hex digest of the file's bytes.

    ``segments`` may be a lazy iterable (plain text): iterating it reads the
    file again and can raise :class:`LoadError` if the file changed, vanished
    or became unreadable since :func:`~ingest.loaders.load` returned.
    """

    path: Path
    file_type: str
    title: str
    author: str | None
    tags: list[str]
    date: datetime | None
    size_bytes: int
    modified_at: datetime
    content_hash: str
    segments: Iterable[Segment] = field(repr=False)
    #: Access groups the document names itself (Markdown front matter).
    groups: list[str] = field(default_factory=list)
