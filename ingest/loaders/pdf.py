"""PDF (``.pdf``): text per page with pypdf, one segment per page.

Pages are numbered from 1. Pages without text are skipped (their numbers are
simply absent); every other page's segment ends with the "\\n\\n" that
separates it from the next, so segments stay contiguous. The info dictionary
gives the title, the author, the keywords (as tags) and the creation date.

A PDF encrypted with an empty user password (restrictions only) is opened;
one that needs a password, or AES without the ``cryptography`` package, is a
LoadError, as is a corrupt file or one with no extractable text at all
(usually a scan; there is no OCR). The file is read whole, and pypdf's own
memory use grows with the page count: a PDF of more than ``Limits.max_pages``
pages is refused once its page tree is read, before any text is extracted.
pypdf bounds each decompressed stream itself (75 MB by default).
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from ingest.documents import Limits, LoadedDocument, LoadError, Segment
from ingest.loaders._files import read_whole
from ingest.loaders._limits import check_pages
from ingest.loaders._meta import Metadata, as_utc, authors, clean_text, split_tags

logger = logging.getLogger(__name__)

_PAGE_SEPARATOR = "\n\n"
# Longest library message kept in a LoadError reason.
_REASON_CHARS = 160


def load_pdf(path: Path, limits: Limits | None = None) -> LoadedDocument:
    """Load a PDF; LoadError if it is encrypted, corrupt, textless, unreadable
    or beyond ``limits`` (default: :class:`~ingest.documents.Limits`)."""
    limits = limits or Limits()
    whole = read_whole(path, limits)
    if not whole.data:
        raise LoadError("empty file", path)

    # pypdf warns about oddities of the file it reads (a bad xref, a wrong
    # offset); they say nothing about our code, so they are logged, not raised.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader, pages = _read_pages(whole.data, path, limits)
        info = _info(reader, path)
    if caught:
        logger.debug(
            "%s: pypdf warned %d times, first: %s", path, len(caught), caught[0].message
        )

    segments = _segments(pages)
    if not segments:
        raise LoadError("no text in PDF (scanned?)", path)
    return LoadedDocument(
        path=path,
        file_type="pdf",
        title=info.title or path.stem,
        author=info.author,
        tags=info.tags,
        date=info.date,
        size_bytes=whole.facts.size_bytes,
        modified_at=whole.facts.modified_at,
        content_hash=whole.content_hash,
        segments=segments,
    )


def _read_pages(data: bytes, path: Path, limits: Limits) -> tuple[PdfReader, list[str]]:
    """The reader and each page's text (blank for a page whose text fails)."""
    # pypdf raises many exception types on damaged files (its own, KeyError,
    # ValueError, RecursionError...): any of them means a corrupt file.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise LoadError("encrypted PDF (password required)", path)
        # Counting walks the page tree but parses no page content.
        check_pages(len(reader.pages), limits, path)
        pages = list(reader.pages)
    except LoadError:
        raise
    except DependencyError as exc:
        raise LoadError("encrypted PDF (needs the cryptography package)", path) from exc
    except Exception as exc:
        raise LoadError(f"corrupt PDF: {_reason(exc)}", path) from exc

    texts = []
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(page.extract_text())
        except Exception as exc:
            logger.warning("%s: page %d skipped: %s", path, number, _reason(exc))
            texts.append("")
    return reader, texts


def _segments(pages: list[str]) -> list[Segment]:
    kept = [(number, text.strip()) for number, text in enumerate(pages, start=1)]
    kept = [(number, text) for number, text in kept if text]
    segments = []
    start = 0
    for index, (number, text) in enumerate(kept):
        if index < len(kept) - 1:
            text += _PAGE_SEPARATOR
        segments.append(Segment(text, start, number))
        start += len(text)
    return segments


def _info(reader: PdfReader, path: Path) -> Metadata:
    """Title, author, keywords and creation date, where readable."""
    try:
        info = reader.metadata
        if info is None:
            return Metadata()
        title, author, keywords = info.title, info.author, info.keywords
        try:
            created = info.creation_date
        except ValueError:
            created = None
    except Exception as exc:
        logger.warning("%s: unreadable PDF metadata: %s", path, _reason(exc))
        return Metadata()
    return Metadata(
        clean_text(title), authors(author), split_tags(keywords), as_utc(created)
    )


def _reason(exc: BaseException) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message[:_REASON_CHARS]
