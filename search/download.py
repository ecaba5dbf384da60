"""Serving a catalogued document's file, and nothing else.

A download names a document id, never a path: the catalog says where its
file is, whether the user may read it (search.access), and which folder the
ingest found it under. The file is served only when it still resolves
inside that folder (a link swapped in since cannot lead elsewhere) and its
bytes still hash to what was indexed (a file replaced since was never
checked against the groups it would need). The bytes hashed are the bytes
served, so nothing can change between the check and the read.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from search.access import Access
from search.catalog import repository as repo
from search.catalog.models import Document
from search.errors import InvalidInputError

NOT_IN_INDEX = "that document is not in the index"


@dataclass(frozen=True)
class DocumentFile:
    name: str
    mime: str
    path: Path
    # The SHA-256 the catalog holds for the indexed file.
    content_hash: str | None


def find_document_file(
    engine: Engine, document_id: str, access: Access
) -> DocumentFile:
    """The file of an indexed document ``access`` may read, checked for place.

    The same error for a document that does not exist and one the user may
    not read: a refusal must not tell that a document is there.
    """
    found = find_document_files(engine, [document_id], access)[document_id]
    if isinstance(found, str):
        raise InvalidInputError(found)
    return found


def find_document_files(
    engine: Engine, document_ids: Sequence[str], access: Access
) -> dict[str, DocumentFile | str]:
    """:func:`find_document_file` for many documents in one catalog read
    (a result page's); a refusal is its reason, a string."""
    with Session(engine) as session:
        rows = repo.get_documents(session, document_ids)
    found: dict[str, DocumentFile | str] = {}
    for document_id in document_ids:
        document = rows.get(document_id)
        if (
            document is None
            or document.active_version is None
            or not access.allows(document.access_groups)
        ):
            found[document_id] = NOT_IN_INDEX
            continue
        try:
            path = _checked_path(document)
        except InvalidInputError as exc:
            found[document_id] = str(exc)
            continue
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        found[document_id] = DocumentFile(path.name, mime, path, document.content_hash)
    return found


def read_document_file(
    engine: Engine, document_id: str, access: Access, max_bytes: int
) -> bytes:
    """The bytes of the document's file, if they are still the indexed ones."""
    found = find_document_file(engine, document_id, access)
    if found.path.stat().st_size > max_bytes:
        raise InvalidInputError("the file is over the size limit for downloads")
    data = found.path.read_bytes()
    expected = found.content_hash
    if expected is None or hashlib.sha256(data).hexdigest() != expected:
        raise InvalidInputError(
            "the file changed since it was indexed; ingest it again to download it"
        )
    return data


def _checked_path(document: Document) -> Path:
    source = Path(document.source_path)
    root = Path(document.root_path) if document.root_path else source.parent
    try:
        resolved = source.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidInputError("the file is no longer at its path") from None
    if not resolved.is_file():
        raise InvalidInputError("the file is no longer at its path")
    if not resolved.is_relative_to(root.resolve()):
        raise InvalidInputError(
            "the file now lies outside the folder it was indexed from; not served"
        )
    return resolved
