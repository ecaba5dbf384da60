"""Input limits and hostile files: each is refused with a clear LoadError.

Size from stat before any read (every format), a file that grows while read,
PDF page counts, DOCX zip bombs, deeply nested HTML and front matter, and
parser failures nobody foresaw.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from zipfile import ZIP_DEFLATED

import docx
import pytest
from ingest_samples import PDF_PAGES, joined_text, make_docx, make_pdf, make_sample
from pypdf import PageObject, PdfWriter

from ingest.documents import Limits, LoadError
from ingest.loaders import html as html_loader
from ingest.loaders import load
from ingest.loaders import pdf as pdf_loader
from ingest.loaders import txt as txt_loader
from ingest.loaders.docx import load_docx
from ingest.loaders.html import load_html
from ingest.loaders.md import load_md
from ingest.loaders.pdf import load_pdf
from ingest.loaders.txt import load_txt

FILE_TYPES = ["txt", "md", "html", "pdf", "docx"]
MB = 1024 * 1024


# Size, from stat, for every format.


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_size_is_checked_from_stat_before_reading(
    tmp_path: Path, file_type: str
) -> None:
    # A sparse file: 312.4 MB by stat and no disk used; had it been read, the
    # reason would be another ("binary file", "corrupt PDF"...).
    path = tmp_path / f"huge.{file_type}"
    with path.open("wb") as handle:
        handle.truncate(int(312.4 * MB))
    with pytest.raises(LoadError) as caught:
        load(path)
    assert caught.value.reason == (
        "file is 312.4 MB, over the 200 MB limit (SEMSEARCH_MAX_FILE_MB)"
    )
    assert caught.value.path == path


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_a_file_one_byte_over_is_refused(tmp_path: Path, file_type: str) -> None:
    path = make_sample(tmp_path, file_type)
    size = path.stat().st_size
    with pytest.raises(LoadError) as caught:
        load(path, Limits(max_bytes=size - 1))
    assert caught.value.reason == (
        f"file is {size} bytes, over the {size - 1} byte limit (SEMSEARCH_MAX_FILE_MB)"
    )


# A DOCX's limit also covers what it expands to: see the DOCX tests below.
@pytest.mark.parametrize("file_type", ["txt", "md", "html", "pdf"])
def test_a_file_at_the_limit_loads(tmp_path: Path, file_type: str) -> None:
    path = make_sample(tmp_path, file_type)
    assert joined_text(load(path, Limits(max_bytes=path.stat().st_size)))


def test_txt_over_a_tiny_limit(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("x" * 200, encoding="utf-8")
    with pytest.raises(LoadError, match=r"^file is 200 bytes, over the 100 byte"):
        load_txt(path, Limits(max_bytes=100))


def test_size_just_over_a_limit_in_mb_does_not_read_as_equal(tmp_path: Path) -> None:
    path = tmp_path / "edge.txt"
    with path.open("wb") as handle:
        handle.truncate(MB + 5000)
    with pytest.raises(LoadError) as caught:
        load(path, Limits(max_bytes=MB))
    assert caught.value.reason.startswith("file is 1.005 MB, over the 1 MB limit")


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limits must be positive"):
        Limits(max_bytes=0)
    with pytest.raises(ValueError, match="limits must be positive"):
        Limits(max_pages=0)


# A text file that grows while it is read.


def _growing_reads(
    monkeypatch: pytest.MonkeyPatch, path: Path, grow_on_call: int
) -> list[int]:
    """Make ``txt._read`` append 10 KB to ``path`` on its ``grow_on_call``-th
    call; return the sizes of the reads done, to check how far they went."""
    real_read: Callable[[BinaryIO, Path, int], bytes] = txt_loader._read
    sizes: list[int] = []

    def read(handle: BinaryIO, where: Path, size: int) -> bytes:
        if len(sizes) + 1 == grow_on_call:
            with path.open("ab") as appender:
                appender.write(b"more words " * 1000)
        block = real_read(handle, where, size)
        sizes.append(len(block))
        return block

    monkeypatch.setattr(txt_loader, "_read", read)
    return sizes


def test_txt_growing_during_the_scan_is_not_read_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.txt"
    path.write_text("first line\n" * 10, encoding="utf-8")
    sizes = _growing_reads(monkeypatch, path, grow_on_call=1)
    with pytest.raises(LoadError) as caught:
        load_txt(path, Limits(max_bytes=150), block_bytes=16)
    assert caught.value.reason == (
        "file grew past the 150 byte limit while read (SEMSEARCH_MAX_FILE_MB)"
    )
    assert sum(sizes) <= 151


def test_txt_growing_while_its_segments_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.txt"
    path.write_text("first line\n" * 10, encoding="utf-8")
    document = load_txt(path, block_bytes=16)
    segments = iter(document.segments)
    next(segments)

    sizes = _growing_reads(monkeypatch, path, grow_on_call=1)
    with pytest.raises(LoadError, match=r"^file changed while reading$"):
        list(segments)
    # Never more than one byte past the 110 bytes the scan saw.
    assert sum(sizes) <= 110 + 1 - 16


# PDF pages, counted before any text is extracted.


def _count_extractions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = PageObject.extract_text

    def extract_text(self: PageObject, *args: Any, **kwargs: Any) -> str:
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", extract_text)
    return calls


def test_pdf_with_more_pages_than_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_pdf(tmp_path / "long.pdf", [*PDF_PAGES, "A fourth page."])
    extractions = _count_extractions(monkeypatch)
    with pytest.raises(LoadError) as caught:
        load(path, Limits(max_pages=3))
    assert caught.value.reason == (
        "PDF has 4 pages, over the 3 page limit (SEMSEARCH_MAX_PAGES)"
    )
    assert extractions == []

    document = load(path, Limits(max_pages=4))
    assert [segment.page for segment in document.segments] == [1, 2, 3, 4]


def test_pdf_over_the_default_page_limit(tmp_path: Path) -> None:
    writer = PdfWriter()
    for _ in range(5001):
        writer.add_blank_page(72, 72)
    buffer = io.BytesIO()
    writer.write(buffer)
    path = tmp_path / "blank.pdf"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(LoadError, match=r"^PDF has 5001 pages, over the 5000 page"):
        load_pdf(path)


@pytest.mark.parametrize(
    "error",
    [KeyError("/Root"), RecursionError("deep"), AttributeError("NullObject")],
    ids=["KeyError", "RecursionError", "AttributeError"],
)
def test_odd_pypdf_failures_are_a_corrupt_pdf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    path = make_pdf(tmp_path / "odd.pdf", PDF_PAGES)

    def failing_reader(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(pdf_loader, "PdfReader", failing_reader)
    with pytest.raises(LoadError, match=r"^corrupt PDF: "):
        load(path)


def test_an_unforeseen_loader_failure_names_the_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_pdf(tmp_path / "odd.pdf", PDF_PAGES)

    def broken(pages: list[str]) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(pdf_loader, "_segments", broken)
    with pytest.raises(LoadError, match=r"^corrupt PDF: division by zero$"):
        load(path)


# DOCX zip bombs, refused before python-docx parses anything.


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every package python-docx is asked to open (not new ones)."""
    calls: list[object] = []
    real = docx.Document

    def document(source: Any = None) -> Any:
        if source is not None:
            calls.append(source)
        return real(source)

    monkeypatch.setattr(docx, "Document", document)
    return calls


def _docx_with(tmp_path: Path, name: str, data: bytes, method: int) -> Path:
    path = make_docx(tmp_path / "report.docx", ["A short report."])
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(name, data, compress_type=method)
    return path


def _expanded_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(member.file_size for member in archive.infolist())


def test_docx_expanding_past_the_byte_limit(
    tmp_path: Path, parsed: list[object]
) -> None:
    path = _docx_with(tmp_path, "word/media/pad.bin", bytes(50 * MB), ZIP_DEFLATED)
    assert path.stat().st_size < MB
    with pytest.raises(LoadError) as caught:
        load(path, Limits(max_bytes=10 * MB))
    assert caught.value.reason.startswith("DOCX expands to 50.")
    assert caught.value.reason.endswith(
        " MB, over the 10 MB limit (SEMSEARCH_MAX_FILE_MB)"
    )
    assert parsed == []


def test_docx_member_with_a_zip_bomb_ratio(
    tmp_path: Path, parsed: list[object]
) -> None:
    # 20 MB of zeros deflate to about 20 KB: within the byte limit, but no
    # XML compresses a thousand-fold.
    path = _docx_with(tmp_path, "word/bomb.xml", bytes(20 * MB), ZIP_DEFLATED)
    with pytest.raises(LoadError, match=r"^DOCX member expands 10\d\d-fold, over"):
        load(path)
    assert parsed == []


@pytest.mark.parametrize(
    ("crc_of", "reason"),
    [
        (101, "DOCX member expands past the size its zip directory states"),
        (100, "corrupt DOCX: Bad CRC-32"),
    ],
    ids=["crc-past-the-size", "crc-of-the-stated-size"],
)
def test_docx_member_that_lies_about_its_size(
    tmp_path: Path, parsed: list[object], crc_of: int, reason: str
) -> None:
    """A member whose directory entry says 100 bytes but whose stream
    inflates to 4 MB; zipfile would inflate it all to return 100 bytes."""
    payload = bytes(4 * MB)
    path = _docx_with(tmp_path, "word/liar.xml", payload, ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    entry = data.rindex(b"word/liar.xml") - 46
    assert data[entry : entry + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, entry + 16, zlib.crc32(payload[:crc_of]))
    struct.pack_into("<I", data, entry + 24, 100)
    path.write_bytes(bytes(data))

    with pytest.raises(LoadError) as caught:
        load(path)
    assert caught.value.reason.startswith(reason)
    assert parsed == []


def test_docx_member_compressed_other_than_word_does(
    tmp_path: Path, parsed: list[object]
) -> None:
    path = _docx_with(tmp_path, "word/extra.xml", b"<x/>" * 100, zipfile.ZIP_BZIP2)
    with pytest.raises(LoadError, match=r"^DOCX member compressed with zip method 12"):
        load_docx(path)
    assert parsed == []


def test_docx_within_the_limits_loads(tmp_path: Path, parsed: list[object]) -> None:
    # Its limit covers what the zip expands to, more than the file's size.
    path = make_docx(tmp_path / "fine.docx", ["Within every limit."])
    expanded = _expanded_size(path)
    assert expanded > path.stat().st_size
    document = load(path, Limits(max_bytes=expanded))
    assert joined_text(document) == "Within every limit."
    assert len(parsed) == 1
    with pytest.raises(LoadError, match=r"^DOCX expands to \d+ bytes, over the"):
        load(path, Limits(max_bytes=expanded - 1))


# Deep nesting: HTML and Markdown front matter.


def test_deeply_nested_html_loads_in_linear_time(tmp_path: Path) -> None:
    # 50,000 unclosed spans, text at every depth: finding each text's block
    # once took time quadratic in the depth (minutes here).
    path = tmp_path / "deep.html"
    path.write_text("<html><body>" + "<span>w " * 50_000, encoding="utf-8")
    started = time.perf_counter()
    document = load_html(path)
    assert time.perf_counter() - started < 30
    assert joined_text(document) == " ".join(["w"] * 50_000)


def test_deeply_nested_dropped_elements(tmp_path: Path) -> None:
    path = tmp_path / "asides.html"
    path.write_text(
        "<html><body><p>Kept.</p>" + "<aside>gone " * 20_000, encoding="utf-8"
    )
    assert joined_text(load_html(path)) == "Kept."


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RecursionError("maximum recursion depth exceeded"), "HTML nested too deeply"),
        (AssertionError("expected name token"), "corrupt HTML: expected name token"),
    ],
    ids=["RecursionError", "AssertionError"],
)
def test_html_parser_failures_are_a_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, reason: str
) -> None:
    path = make_sample(tmp_path, "html")

    def failing_soup(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(html_loader, "BeautifulSoup", failing_soup)
    with pytest.raises(LoadError, match=f"^{reason}"):
        load(path)


def test_deeply_nested_front_matter_is_kept_as_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "deep.md"
    path.write_text("---\ntitle: " + "[" * 5000 + "\n---\nBody.\n", encoding="utf-8")
    document = load_md(path)
    assert joined_text(document).startswith("---\ntitle: [[[")
    assert "front matter is not valid YAML (nested too deeply)" in caplog.text


def test_deeply_nested_front_matter_naming_groups_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.md"
    path.write_text(
        "---\ngroups: [staff]\ntitle: " + "[" * 5000 + "\n---\nBody.\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError, match=r"names groups but is not valid YAML"):
        load_md(path)


@pytest.mark.parametrize(
    "groups", ["{staff: true}", "[[staff, admins]]", "['']"], ids=str
)
def test_front_matter_groups_without_a_name_are_refused(
    tmp_path: Path, groups: str
) -> None:
    # Loading these would make public a document meant to be restricted.
    path = tmp_path / "rota.md"
    path.write_text(f"---\ngroups: {groups}\n---\nThe rota.\n", encoding="utf-8")
    with pytest.raises(
        LoadError, match=r"^front matter groups are not a list of names$"
    ):
        load_md(path)
