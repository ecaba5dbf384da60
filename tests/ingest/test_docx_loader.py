"""DOCX: paragraphs and table rows in order, core properties, corrupt files."""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path

import docx
import pytest
from ingest_samples import assert_file_facts, joined_text, make_docx

from ingest.documents import LoadError
from ingest.loaders.docx import load_docx


def test_paragraphs_tables_and_properties(tmp_path: Path) -> None:
    created = dt.datetime(2023, 6, 1, 9, 30, tzinfo=dt.UTC)
    path = make_docx(
        tmp_path / "report.docx",
        ["Quarterly report", "", "Sales went up."],
        table=[["Region", "Total"], ["North", "12"]],
        title="Q2 Report",
        author="Sam Lee",
        keywords="sales; quarterly, north",
        created=created,
    )
    document = load_docx(path)
    assert document.file_type == "docx"
    assert (document.title, document.author) == ("Q2 Report", "Sam Lee")
    assert document.tags == ["sales", "quarterly", "north"]
    assert document.date == created
    assert joined_text(document) == (
        "Quarterly report\n\nSales went up.\n\nRegion | Total\n\nNorth | 12\n\nThe end."
    )
    assert_file_facts(document, path)


def test_merged_cells_count_once(tmp_path: Path) -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text = "wide"
    table.cell(0, 0).merge(table.cell(0, 1))
    table.cell(0, 2).text = "right"
    table.cell(1, 0).text = "a"
    path = tmp_path / "merged.docx"
    document.save(str(path))
    assert joined_text(load_docx(path)) == "wide | right\n\na"


def test_title_falls_back_to_the_stem(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "memo.docx", ["Text"])
    document = load_docx(path)
    assert (document.title, document.author, document.tags) == ("memo", None, [])


def test_no_text(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "blank.docx", ["", "   "])
    with pytest.raises(LoadError, match="no text in DOCX"):
        load_docx(path)


def _zip(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(os.urandom(4096), id="random-bytes"),
        pytest.param(_zip({"junk.txt": "hello"}), id="zip-of-junk"),
        pytest.param(_zip({"[Content_Types].xml": "<<not xml"}), id="broken-xml"),
    ],
)
def test_corrupt(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(data)
    with pytest.raises(LoadError, match=r"^corrupt DOCX: "):
        load_docx(path)


def test_truncated(tmp_path: Path) -> None:
    data = make_docx(tmp_path / "whole.docx", ["Some text"]).read_bytes()
    path = tmp_path / "truncated.docx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match=r"^corrupt DOCX: "):
        load_docx(path)
