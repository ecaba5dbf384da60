"""Loaders: one file in, one :class:`~ingest.documents.LoadedDocument` out.

:func:`load` picks the loader by the file's extension, case-insensitively:

=========================  =========  ======================================
extensions                 file type  text
=========================  =========  ======================================
``.txt``, ``.text``        txt        streamed in 1 MiB blocks
``.md``, ``.markdown``     md         after the YAML front matter, read whole
``.html``, ``.htm``        html       main content blocks, read whole
``.pdf``                   pdf        one segment per page, read whole
``.docx``                  docx       paragraphs and table rows, read whole
=========================  =========  ======================================

Every failure a user can cause is a :class:`~ingest.documents.LoadError` with a
short reason: an unsupported extension, a file that is unreadable, vanished
since the walk, empty, binary, corrupt or without text, or beyond the
:class:`~ingest.documents.Limits` (size from stat before any read, PDF pages
before any text, a DOCX's expanded size and compression ratio before it is
parsed). Should a parser fail in a way its loader did not foresee, :func:`load`
still turns that into a LoadError naming the format, so one hostile file never
stops an ingest run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from ingest.documents import Limits, LoadedDocument, LoadError
from ingest.loaders.docx import load_docx
from ingest.loaders.html import load_html
from ingest.loaders.md import load_md
from ingest.loaders.pdf import load_pdf
from ingest.loaders.txt import load_txt

__all__ = ["FILE_TYPES", "file_type_of", "load"]

logger = logging.getLogger(__name__)

Loader = Callable[[Path, Limits], LoadedDocument]
# Longest library message kept in a LoadError reason.
_REASON_CHARS = 160
_FORMAT_NAMES = {"txt": "text file", "md": "Markdown", "html": "HTML"}

#: Lowercase extension (with its dot) to canonical file type.
FILE_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".txt": "txt",
        ".text": "txt",
        ".md": "md",
        ".markdown": "md",
        ".html": "html",
        ".htm": "html",
        ".pdf": "pdf",
        ".docx": "docx",
    }
)

_LOADERS: Mapping[str, Loader] = MappingProxyType(
    {
        "txt": load_txt,
        "md": load_md,
        "html": load_html,
        "pdf": load_pdf,
        "docx": load_docx,
    }
)


def file_type_of(path: Path) -> str | None:
    """The canonical file type of ``path`` by its extension, or None if unsupported."""
    return FILE_TYPES.get(path.suffix.lower())


def load(path: Path, limits: Limits | None = None) -> LoadedDocument:
    """Load one file with the loader for its extension, within ``limits``
    (default: :class:`~ingest.documents.Limits`, 200 MB and 5000 pages).

    Raises LoadError for an unsupported extension and for any file the loader
    cannot read (see the loader modules for their reasons).
    """
    kind = file_type_of(path)
    if kind is None:
        suffix = path.suffix or "no extension"
        raise LoadError(f"unsupported file type ({suffix})", path)
    try:
        return _LOADERS[kind](path, limits or Limits())
    except LoadError:
        raise
    except Exception as exc:
        # A loader bug or a parser failure nobody foresaw: the file is
        # refused, and -vv shows where it happened.
        logger.debug("%s: %s loader failed", path, kind, exc_info=True)
        message = " ".join(str(exc).split()) or type(exc).__name__
        name = _FORMAT_NAMES.get(kind, kind.upper())
        reason = f"corrupt {name}: {message[:_REASON_CHARS]}"
        raise LoadError(reason, path) from exc
