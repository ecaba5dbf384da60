"""How bytes of a text file become text: the decoding policy shared by the
plain-text and Markdown loaders.

In order: a byte order mark names the encoding (UTF-8, UTF-16 or UTF-32, LE or
BE); else a NUL byte in the first 8 KB means a binary file; else the bytes are
UTF-8 if they all decode strictly, else latin-1 (which decodes any byte, so it
is the last resort, and shows Windows-1252 punctuation as control characters).
A file with a BOM whose body does not decode keeps its encoding with invalid
sequences replaced by U+FFFD, and a warning is logged.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path

from ingest.documents import LoadError
from ingest.loaders._files import looks_binary

logger = logging.getLogger(__name__)

# Longest BOM first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_encoding(head: bytes) -> str | None:
    """The codec named by a byte order mark at the start of ``head``, or None.

    The codecs returned (``utf-8-sig``, ``utf-16``, ``utf-32``) consume the
    mark, so it never appears in the decoded text.
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return None


def check_not_binary(head: bytes, path: Path) -> None:
    """Raise LoadError("binary file") for NUL bytes in a file without a BOM."""
    if bom_encoding(head) is None and looks_binary(head):
        raise LoadError("binary file", path)


def decode_whole(data: bytes, path: Path) -> str:
    """Decode a whole file's bytes by the policy above.

    Raises LoadError for a binary file or one that is empty or only whitespace.
    """
    check_not_binary(data, path)
    encoding = bom_encoding(data)
    if encoding is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            logger.warning(
                "%s: invalid %s despite its byte order mark; bad bytes replaced",
                path,
                encoding,
            )
            text = data.decode(encoding, errors="replace")

    if not text.strip():
        raise LoadError("empty file", path)
    return text
