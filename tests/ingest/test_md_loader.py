"""Markdown: front matter, title fallbacks, offsets after the front matter."""

from __future__ import annotations

import codecs
import datetime as dt
import logging
from pathlib import Path

import pytest
from ingest_samples import assert_file_facts, joined_text

from ingest.documents import LoadError
from ingest.loaders.md import load_md

BODY = "# Heading One\n\nSome *body* text.\n"


def write(tmp_path: Path, text: str, name: str = "notes.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_gives_metadata_and_is_not_indexed(tmp_path: Path) -> None:
    front = (
        "---\n"
        "title: Field Notes\n"
        "author: Ada Lovelace\n"
        "tags: [rivers, maps]\n"
        "date: 2024-03-05\n"
        "draft: true\n"
        "---\n"
    )
    path = write(tmp_path, front + BODY)
    document = load_md(path)
    assert document.file_type == "md"
    assert document.title == "Field Notes"
    assert document.author == "Ada Lovelace"
    assert document.tags == ["rivers", "maps"]
    assert document.date == dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
    # Offsets count from the first character after the closing "---" line.
    [segment] = document.segments
    assert segment.start == 0
    assert joined_text(document) == BODY
    assert_file_facts(document, path)


def test_front_matter_with_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes(b"---\r\ntitle: Windows\r\n---\r\nBody.\r\n")
    document = load_md(path)
    assert document.title == "Windows"
    assert joined_text(document) == "Body.\r\n"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("tags: rivers, maps , , rivers", ["rivers", "maps"]),
        ("tags:\n  - one\n  - 2", ["one", "2"]),
        ("tags:", []),
    ],
)
def test_tags_as_a_list_or_a_comma_string(
    tmp_path: Path, tags: str, expected: list[str]
) -> None:
    path = write(tmp_path, f"---\n{tags}\n---\n{BODY}")
    assert load_md(path).tags == expected


def test_datetime_with_a_zone_becomes_utc(tmp_path: Path) -> None:
    path = write(tmp_path, f"---\ndate: 2024-03-05T10:00:00+02:00\n---\n{BODY}")
    assert load_md(path).date == dt.datetime(2024, 3, 5, 8, tzinfo=dt.UTC)


def test_title_falls_back_to_the_first_heading_then_the_stem(tmp_path: Path) -> None:
    path = write(tmp_path, "Intro line.\n\n## Minor\n\n# The Real Title #\n")
    assert load_md(path).title == "The Real Title"

    fenced = "```bash\n# not a heading\n```\n\nPlain text.\n"
    path = write(tmp_path, fenced, "no-heading.md")
    assert load_md(path).title == "no-heading"


def test_bad_yaml_keeps_the_text_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "---\ntitle: [unclosed\n---\n" + BODY
    path = write(tmp_path, text)
    with caplog.at_level(logging.WARNING, logger="ingest.loaders.md"):
        document = load_md(path)
    assert "not valid YAML" in caplog.text
    assert joined_text(document) == text
    assert document.title == "Heading One"
    assert document.tags == []


def test_front_matter_that_is_not_a_mapping_is_text(tmp_path: Path) -> None:
    text = "---\njust a sentence between rules\n---\n" + BODY
    path = write(tmp_path, text)
    assert joined_text(load_md(path)) == text


def test_unclosed_front_matter_is_text(tmp_path: Path) -> None:
    text = "---\ntitle: x\n\n" + BODY
    document = load_md(write(tmp_path, text))
    assert joined_text(document) == text
    assert document.title == "Heading One"


def test_only_front_matter(tmp_path: Path) -> None:
    path = write(tmp_path, "---\ntitle: Empty\n---\n\n")
    with pytest.raises(LoadError, match="no text after front matter"):
        load_md(path)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (codecs.BOM_UTF16_LE + BODY.encode("utf-16-le"), BODY),
        (codecs.BOM_UTF8 + BODY.encode("utf-8"), BODY),
        ("# Café\n\nà la carte\n".encode("latin-1"), "# Café\n\nà la carte\n"),
    ],
)
def test_decoded_like_plain_text(tmp_path: Path, data: bytes, text: str) -> None:
    path = tmp_path / "decoded.md"
    path.write_bytes(data)
    assert joined_text(load_md(path)) == text


def test_binary_and_whitespace_files(tmp_path: Path) -> None:
    path = tmp_path / "binary.md"
    path.write_bytes(b"# x\x00\x01\x02")
    with pytest.raises(LoadError, match=r"^binary file$"):
        load_md(path)
    path = write(tmp_path, " \n\n\t", "blank.md")
    with pytest.raises(LoadError, match=r"^empty file$"):
        load_md(path)
