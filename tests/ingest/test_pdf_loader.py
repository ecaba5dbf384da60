"""PDF: one segment per page, metadata, encrypted, corrupt and textless files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from ingest_samples import PDF_PAGES, assert_file_facts, joined_text, make_pdf
from pypdf import PdfReader, PdfWriter

from ingest.documents import LoadError
from ingest.loaders.pdf import load_pdf


def test_pages_become_contiguous_segments(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "story.pdf",
        PDF_PAGES,
        title="A Story",
        author="Jo March",
        keywords="rivers, snow",
    )
    document = load_pdf(path)
    assert document.file_type == "pdf"
    assert (document.title, document.author) == ("A Story", "Jo March")
    assert document.tags == ["rivers", "snow"]
    assert document.date is not None
    assert document.date.utcoffset() is not None

    segments = list(document.segments)
    assert [segment.page for segment in segments] == [1, 2, 3]
    assert [segment.text.rstrip("\n") for segment in segments] == PDF_PAGES
    assert [segment.text[-2:] for segment in segments[:-1]] == ["\n\n", "\n\n"]
    assert joined_text(document) == "\n\n".join(PDF_PAGES)
    assert_file_facts(document, path)


def test_blank_pages_are_skipped_and_keep_numbering(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "gaps.pdf", ["page one text", "", "page three text"])
    segments = list(load_pdf(path).segments)
    assert [segment.page for segment in segments] == [1, 3]
    assert segments[1].start == len(segments[0].text)


def test_title_falls_back_to_the_stem(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "untitled-report.pdf", ["some text"])
    document = load_pdf(path)
    assert (document.title, document.author, document.tags) == (
        "untitled-report",
        None,
        [],
    )


def test_no_text_means_a_scan(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(LoadError, match=r"^no text in PDF \(scanned\?\)$"):
        load_pdf(path)


def _encrypted(tmp_path: Path, user_password: str) -> Path:
    plain = make_pdf(tmp_path / "plain.pdf", PDF_PAGES)
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(
        user_password=user_password, owner_password="owner", algorithm="RC4-128"
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    path = tmp_path / "locked.pdf"
    path.write_bytes(buffer.getvalue())
    return path


def test_password_protected(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="encrypted PDF"):
        load_pdf(_encrypted(tmp_path, user_password="secret"))


def test_restrictions_only_encryption_opens(tmp_path: Path) -> None:
    document = load_pdf(_encrypted(tmp_path, user_password=""))
    assert joined_text(document) == "\n\n".join(PDF_PAGES)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.pdf"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(LoadError, match=r"^corrupt PDF: "):
        load_pdf(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated(tmp_path: Path, keep: float) -> None:
    data = make_pdf(tmp_path / "whole.pdf", PDF_PAGES).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(LoadError, match=r"^corrupt PDF: "):
        load_pdf(path)


def test_text_file_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("this is not a PDF at all\n", encoding="utf-8")
    with pytest.raises(LoadError, match=r"^corrupt PDF: "):
        load_pdf(path)
