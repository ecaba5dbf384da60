"""Sample files for the loader tests, built on the spot (nothing binary is
committed), and checks that every loader's output must pass."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docx
import pytest
from fpdf import FPDF

from ingest.documents import LoadedDocument


def joined_text(document: LoadedDocument) -> str:
    """The document text, after checking that its segments are contiguous."""
    texts = []
    expected_start = 0
    for segment in document.segments:
        assert segment.start == expected_start
        texts.append(segment.text)
        expected_start += len(segment.text)
    return "".join(texts)


def assert_file_facts(document: LoadedDocument, path: Path) -> None:
    """Hash, size and mtime are those of the file on disk."""
    data = path.read_bytes()
    assert document.content_hash == hashlib.sha256(data).hexdigest()
    assert document.size_bytes == len(data)
    assert document.modified_at.utcoffset() == dt.timedelta(0)
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
    assert document.modified_at == mtime


def deny_reading(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` unreadable: chmod 000, or, as root (which chmod does not
    stop), a ``Path.open`` that refuses this one path."""
    path.chmod(0)
    if os.geteuid() != 0:
        return
    real_open = Path.open

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)


def make_pdf(
    path: Path,
    pages: Sequence[str],
    *,
    title: str | None = None,
    author: str | None = None,
    keywords: str | None = None,
) -> Path:
    """A PDF with one page per text (an empty text gives a page with a box)."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    if keywords:
        pdf.set_keywords(keywords)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 50, 30)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_docx(
    path: Path,
    paragraphs: Sequence[str],
    *,
    table: Sequence[Sequence[str]] = (),
    title: str | None = None,
    author: str | None = None,
    keywords: str | None = None,
    created: dt.datetime | None = None,
) -> Path:
    """A DOCX with the paragraphs, then a table (rows of cells), then "The end."."""
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, cells in zip(grid.rows, table, strict=True):
            for cell, text in zip(row.cells, cells, strict=True):
                cell.text = text
        document.add_paragraph("The end.")
    props = document.core_properties
    props.title = title or ""
    props.author = author or ""
    props.keywords = keywords or ""
    if created is not None:
        props.created = created
    document.save(str(path))
    return path


PDF_PAGES = [
    "The first page talks about rivers and the sea.",
    "The second page is about mountains, glaciers and snow.",
    "The third page ends the story in a quiet valley.",
]


def make_sample(folder: Path, file_type: str) -> Path:
    """A small valid file of ``file_type`` (txt, md, html, pdf, docx)."""
    path = folder / f"sample.{file_type}"
    if file_type == "txt":
        path.write_text("Plain words.\nA second line.\n", encoding="utf-8")
    elif file_type == "md":
        path.write_text(
            "---\ntitle: Notes\ntags: [a, b]\n---\n# Heading\n\nBody text.\n",
            encoding="utf-8",
        )
    elif file_type == "html":
        path.write_text(
            "<html><head><title>Page</title></head>"
            "<body><p>Hello there.</p><p>Second block.</p></body></html>",
            encoding="utf-8",
        )
    elif file_type == "pdf":
        make_pdf(path, PDF_PAGES)
    elif file_type == "docx":
        make_docx(path, ["One paragraph.", "Another one."], table=[["a", "b"]])
    else:
        raise ValueError(file_type)
    return path
