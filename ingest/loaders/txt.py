"""Plain text (``.txt``, ``.text``), streamed so that size is no memory cost.

The file is read twice, in blocks of ``block_bytes`` (1 MiB by default):

1. A scan hashes the bytes (SHA-256) and checks that they decode, so that the
   document's ``content_hash`` and encoding are known before any text is
   handed on. The encoding is guessed from the first block, or 8 KB if more (see
   :mod:`ingest.loaders._text`); when UTF-8 fails later in the file, the scan
   starts again from the top as latin-1. Deciding here, before any segment
   is produced, means a consumer never sees text that a later block would
   have decoded differently.
2. Iterating the document's ``segments`` reads and decodes the file again,
   incrementally, and yields segments of at most about ``block_bytes``
   characters, each cut just after a newline in the second half of the block
   (else after a space, else at the block size for text without either).

Memory stays around a few blocks whatever the file size (a 100 MB file peaks
near 5 MB). The text is the decoded file as it is: the BOM is dropped, line
endings are kept. If the file changes between the scan and the iteration
(size or mtime), the iteration raises LoadError("file changed while reading").

A file over ``Limits.max_bytes`` by its stat is refused before it is read.
Neither pass reads past what it expects (the scan: the limit; the iteration:
the size the scan saw), so a file that keeps growing while it is read (a log
being written) is refused as soon as it passes that, not read for as long as
it grows.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.documents import Limits, LoadedDocument, LoadError, Segment
from ingest.loaders._files import (
    SNIFF_BYTES,
    FileFacts,
    facts_of,
    load_error,
    open_binary,
)
from ingest.loaders._limits import check_size, grew_past
from ingest.loaders._text import bom_encoding, check_not_binary

logger = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class _Scan:
    encoding: str
    errors: str
    content_hash: str
    facts: FileFacts


def load_txt(
    path: Path, limits: Limits | None = None, *, block_bytes: int = BLOCK_BYTES
) -> LoadedDocument:
    """Scan a plain-text file and return it with lazily read segments.

    ``block_bytes`` (at least 1) is the read size and the approximate segment
    length in characters. Raises LoadError for a binary, empty (only
    whitespace), unreadable or vanished file, and one beyond ``limits``
    (default: :class:`~ingest.documents.Limits`).
    """
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be at least 1, got {block_bytes}")
    scan = _scan(path, block_bytes, limits or Limits())
    return LoadedDocument(
        path=path,
        file_type="txt",
        title=path.stem,
        author=None,
        tags=[],
        date=None,
        size_bytes=scan.facts.size_bytes,
        modified_at=scan.facts.modified_at,
        content_hash=scan.content_hash,
        segments=TextSegments(path, scan, block_bytes),
    )


class TextSegments:
    """The segments of a scanned text file; each iteration reads the file anew."""

    def __init__(self, path: Path, scan: _Scan, block_bytes: int) -> None:
        self._path = path
        self._scan = scan
        self._block_bytes = block_bytes

    def __iter__(self) -> Iterator[Segment]:
        path, target = self._path, self._block_bytes
        with open_binary(path) as handle:
            _check_unchanged(handle, path, self._scan.facts)
            reader = _BoundedReader(
                handle,
                path,
                self._scan.facts.size_bytes,
                lambda: LoadError("file changed while reading", path),
            )
            decoder_type = codecs.getincrementaldecoder(self._scan.encoding)
            decoder = decoder_type(errors=self._scan.errors)
            pending = ""
            start = 0
            while True:
                block = reader.read(target)
                final = not block
                try:
                    pending += decoder.decode(block, final=final)
                except UnicodeDecodeError as exc:
                    # The scan decoded these bytes; they changed in between.
                    raise LoadError("file changed while reading", path) from exc

                while len(pending) >= target or (final and pending):
                    cut = _cut_point(pending, target)
                    yield Segment(pending[:cut], start)
                    start += cut
                    pending = pending[cut:]
                if final:
                    return


class _BoundedReader:
    """Reads a file, refusing to go more than ``limit`` bytes into it.

    ``refusal()`` is raised as soon as a read finds a byte past the limit; at
    most one byte past it is ever read.
    """

    def __init__(
        self,
        handle: BinaryIO,
        path: Path,
        limit: int,
        refusal: Callable[[], LoadError],
    ) -> None:
        self._handle = handle
        self._path = path
        self._limit = limit
        self._left = limit
        self._refusal = refusal

    def read(self, size: int) -> bytes:
        block = _read(self._handle, self._path, min(size, self._left + 1))
        self._left -= len(block)
        if self._left < 0:
            raise self._refusal()
        return block

    def rewind(self) -> None:
        """Back to the start of the file, with the whole limit again."""
        try:
            self._handle.seek(0)
        except OSError as exc:
            raise load_error(exc, self._path) from exc
        self._left = self._limit


def _scan(path: Path, block_bytes: int, limits: Limits) -> _Scan:
    with open_binary(path) as handle:
        facts = _fstat(handle, path)
        check_size(facts.size_bytes, limits, path)
        reader = _BoundedReader(
            handle, path, limits.max_bytes, lambda: grew_past(limits, path)
        )
        # The head decides: BOM, binary (NUL bytes) and the UTF-8 guess.
        head = reader.read(max(block_bytes, SNIFF_BYTES))
        if not head:
            raise LoadError("empty file", path)
        check_not_binary(head, path)

        declared = bom_encoding(head)
        if declared is not None:
            candidates = [(declared, "strict"), (declared, "replace")]
        elif _decodes(head, "utf-8"):
            candidates = [("utf-8", "strict"), ("latin-1", "strict")]
        else:
            candidates = [("latin-1", "strict")]

        # The last candidate decodes any bytes, so the loop always breaks.
        for encoding, errors in candidates:
            reader.rewind()
            digest = _hash_and_check(reader, path, encoding, errors, block_bytes)
            if digest is not None:
                break
            logger.info("%s: not %s past the first block, rereading", path, encoding)
        else:
            raise AssertionError("the last candidate encoding cannot fail")

        if errors == "replace":
            logger.warning(
                "%s: invalid %s despite its byte order mark; bad bytes replaced",
                path,
                encoding,
            )
        _check_unchanged(handle, path, facts)
    return _Scan(encoding, errors, digest, facts)


def _hash_and_check(
    reader: _BoundedReader, path: Path, encoding: str, errors: str, block_bytes: int
) -> str | None:
    """SHA-256 of the file if it decodes as ``encoding``, else None.

    Raises LoadError("empty file") when the decoded text is only whitespace.
    """
    hasher = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    can_fail = encoding != "latin-1" and errors == "strict"
    has_text = False
    while True:
        block = reader.read(block_bytes)
        hasher.update(block)
        # Once text is seen, decoding only matters where it can still fail.
        if can_fail or not has_text:
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                return None
            has_text = has_text or (text != "" and not text.isspace())
        if not block:
            break
    if not has_text:
        raise LoadError("empty file", path)
    return hasher.hexdigest()


def _decodes(sample: bytes, encoding: str) -> bool:
    """Whether ``sample``, possibly cut mid-character at its end, decodes."""
    try:
        codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _cut_point(text: str, target: int) -> int:
    """Where to end a segment of ``text``: at most about ``target`` characters."""
    if len(text) < target:
        return len(text)
    half = target // 2
    # A newline at index ``target`` still counts, so "\r\n" is never split.
    newline = text.rfind("\n", half, target + 1)
    if newline != -1:
        return newline + 1
    space = _SPACE.search(text[half:target][::-1])
    if space is not None:
        return target - space.start()
    return target


def _read(handle: BinaryIO, path: Path, size: int) -> bytes:
    try:
        return handle.read(size)
    except OSError as exc:
        raise load_error(exc, path) from exc


def _fstat(handle: BinaryIO, path: Path) -> FileFacts:
    try:
        return facts_of(os.fstat(handle.fileno()))
    except OSError as exc:
        raise load_error(exc, path) from exc


def _check_unchanged(handle: BinaryIO, path: Path, facts: FileFacts) -> None:
    now = _fstat(handle, path)
    if (now.size_bytes, now.mtime_ns) != (facts.size_bytes, facts.mtime_ns):
        raise LoadError("file changed while reading", path)
