"""Word documents (``.docx``) with python-docx.

The text is the body's paragraphs and tables in document order, joined by a
blank line; a table gives one block per row, its cells' text joined by
" | " (a merged cell counts once). Empty paragraphs are skipped. Core
properties give the title, the author, the keywords (as tags) and the creation
date. Headers, footers, footnotes, comments and text boxes are not read. The
file is read whole; a file that is not a valid DOCX package is a LoadError.

A DOCX is a zip, so a small file can expand to far more XML than it weighs.
Before anything is parsed, its zip directory is checked: every member stored
or deflated (as Word writes them; bzip2 and LZMA members are refused, since
Python's zipfile inflates those without bounding the output), the members'
expanded sizes together within ``Limits.max_bytes``, and no member past 1 MB
expanding more than 500-fold. Deflate itself tops out near 1030-fold, which
zip bombs reach; text compresses about 4-fold and Word's styles about 30-fold,
and even a document of one paragraph repeated thousands of times stays near
300-fold. Every member is then inflated once, in blocks, to check that it is
no larger than the directory says (inflating is fast next to parsing).
"""

from __future__ import annotations

import copy
import io
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.documents import Limits, LoadedDocument, LoadError, Segment
from ingest.loaders._files import read_whole
from ingest.loaders._limits import check_size
from ingest.loaders._meta import Metadata, as_utc, authors, clean_text, split_tags

logger = logging.getLogger(__name__)

_BLOCK_SEPARATOR = "\n\n"
_CELL_SEPARATOR = " | "
# Longest library message kept in a LoadError reason.
_REASON_CHARS = 160
# Zip bomb guard: members past this size may expand at most this many times.
_RATIO_FROM_BYTES = 1024 * 1024
_MAX_RATIO = 500
_COMPRESSIONS = frozenset([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
# Read size when checking that members inflate to the size they state.
_PROBE_BYTES = 1024 * 1024


def load_docx(path: Path, limits: Limits | None = None) -> LoadedDocument:
    """Load a DOCX file; LoadError if it is corrupt, textless, unreadable or
    beyond ``limits`` (default: :class:`~ingest.documents.Limits`)."""
    limits = limits or Limits()
    whole = read_whole(path, limits)
    if not whole.data:
        raise LoadError("empty file", path)
    check_package(whole.data, limits, path)

    # A damaged package fails in zipfile, lxml or python-docx with their own
    # exception types; any of them means a corrupt file.
    try:
        document = docx.Document(io.BytesIO(whole.data))
        text = _BLOCK_SEPARATOR.join(_blocks(document))
    except Exception as exc:
        raise _corrupt(exc, path) from exc
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


def check_package(data: bytes, limits: Limits, path: Path) -> None:
    """Refuse a zip that would expand beyond ``limits`` or like a zip bomb.

    The zip directory is checked first, then every member is inflated once,
    a block at a time, to prove it is no larger than the directory says:
    zipfile bounds what it returns by that size, but not what it inflates
    on the way, so a member that lies about its size could otherwise cost
    gigabytes of memory inside python-docx.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            _check_directory(members, limits, path)
            for member in members:
                _check_member_size(archive, member, path)
    except LoadError:
        raise
    except Exception as exc:
        raise _corrupt(exc, path) from exc


def _check_directory(
    members: list[zipfile.ZipInfo], limits: Limits, path: Path
) -> None:
    """The members' methods, total expanded size and compression ratios."""
    for member in members:
        # zipfile inflates bzip2 and LZMA input without bounding the output.
        if member.compress_type not in _COMPRESSIONS:
            raise LoadError(
                f"DOCX member compressed with zip method {member.compress_type}, "
                "not stored or deflated as Word writes them",
                path,
            )
    check_size(sum(m.file_size for m in members), limits, path, "DOCX expands to")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FROM_BYTES and ratio > _MAX_RATIO:
            raise LoadError(
                f"DOCX member expands {ratio:.0f}-fold, over the {_MAX_RATIO}-fold "
                "limit for compressed XML (a zip bomb?)",
                path,
            )


def _check_member_size(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path
) -> None:
    """Inflate ``member`` a block at a time, to one byte past its stated size."""
    probe = copy.copy(member)
    probe.file_size = member.file_size + 1
    inflated = 0
    with archive.open(probe) as stream:
        while block := stream.read(_PROBE_BYTES):
            inflated += len(block)
            if inflated > member.file_size:
                raise LoadError(
                    "DOCX member expands past the size its zip directory states "
                    "(a zip bomb?)",
                    path,
                )


def _corrupt(exc: BaseException, path: Path) -> LoadError:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return LoadError(f"corrupt DOCX: {message[:_REASON_CHARS]}", path)


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
