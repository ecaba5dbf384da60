"""Word documents (``.docx``) with python-docx.

The text is the body's paragraphs and tables in document order, joined by a
blank line; a table gives one block per row, its cells' text joined by
" | " (a merged cell counts once). Empty paragraphs are skipped. Core
properties give the title, the author, the keywords (as tags) and the creation
date. Headers, footers, footnotes, comments and text boxes are not read. The
file is read whole; a file that is not a valid DOCX package is a LoadError.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.documents import LoadedDocument, LoadError, Segment
from ingest.loaders._files import read_whole
from ingest.loaders._meta import Metadata, as_utc, authors, clean_text, split_tags

logger = logging.getLogger(__name__)

_BLOCK_SEPARATOR = "\n\n"
_CELL_SEPARATOR = " | "
# Longest library message kept in a LoadError reason.
_REASON_CHARS = 160


def load_docx(path: Path) -> LoadedDocument:
    """Load a DOCX file; LoadError if it is corrupt, textless or unreadable."""
    whole = read_whole(path)
    if not whole.data:
        raise LoadError("empty file", path)

    # A damaged package fails in zipfile, lxml or python-docx with their own
    # exception types; any of them means a corrupt file.
    try:
        document = docx.Document(io.BytesIO(whole.data))
        text = _BLOCK_SEPARATOR.join(_blocks(document))
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise LoadError(f"corrupt DOCX: {message[:_REASON_CHARS]}", path) from exc
    if not text:
        raise LoadError("no text in DOCX", path)

    meta = _properties(document, path)
    return LoadedDocument(
        path=path,
        file_type="docx",
        title=meta.title or path.stem,
        author=meta.author,
        tags=meta.tags,
        date=meta.date,
        size_bytes=whole.facts.size_bytes,
        modified_at=whole.facts.modified_at,
        content_hash=whole.content_hash,
        segments=[Segment(text, 0)],
    )


def _blocks(document: Document) -> Iterator[str]:
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            if item.text.strip():
                yield item.text
        elif isinstance(item, Table):
            yield from _rows(item)


def _rows(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A merged cell appears once per grid column it spans.
            if cell._tc is previous:
                continue
            previous = cell._tc
            if cell.text.strip():
                cells.append(cell.text.strip())
        if cells:
            yield _CELL_SEPARATOR.join(cells)


def _properties(document: Document, path: Path) -> Metadata:
    """Title, author, keywords as tags and creation date, where readable."""
    try:
        props = document.core_properties
        return Metadata(
            clean_text(props.title),
            authors(props.author),
            split_tags(props.keywords),
            as_utc(props.created),
        )
    except Exception as exc:
        logger.warning("%s: unreadable core properties: %s", path, type(exc).__name__)
        return Metadata()
