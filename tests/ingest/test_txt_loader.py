"""Plain text: decoding, binary and empty files, streaming in bounded memory."""

from __future__ import annotations

import codecs
import hashlib
import logging
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_samples import assert_file_facts, joined_text

from ingest.documents import LoadError
from ingest.loaders.txt import load_txt

TEXT = "Grüße aus Köln — 東京 and naïve café.\nSecond line.\n"


def write(tmp_path: Path, data: bytes, name: str = "doc.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, TEXT.encode("utf-8"))
    document = load_txt(path)
    assert joined_text(document) == TEXT
    assert document.title == "doc"
    assert (document.author, document.tags, document.date) == (None, [], None)
    assert_file_facts(document, path)


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
    ],
)
def test_byte_order_mark_names_the_encoding(
    tmp_path: Path, encoding: str, bom: bytes
) -> None:
    # UTF-16 and UTF-32 text is full of NUL bytes: the BOM says it is not binary.
    path = write(tmp_path, bom + TEXT.encode(encoding))
    document = load_txt(path, block_bytes=16)
    assert joined_text(document) == TEXT
    assert_file_facts(document, path)


def test_latin1_fallback(tmp_path: Path) -> None:
    text = "Café crème, señor.\n"
    path = write(tmp_path, text.encode("latin-1"))
    assert joined_text(load_txt(path)) == text


def test_utf8_failing_after_the_first_block_rereads_as_latin1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The sniffed head (8 KB) is plain ASCII; 0xE9 ("é" in latin-1) comes later.
    data = b"plain ascii line\n" * 1000 + b"caf\xe9\n"
    path = write(tmp_path, data)
    with caplog.at_level(logging.INFO, logger="ingest.loaders.txt"):
        document = load_txt(path, block_bytes=4096)
    assert "not utf-8 past the first block" in caplog.text
    assert joined_text(document) == data.decode("latin-1")
    assert_file_facts(document, path)


def test_character_split_across_blocks(tmp_path: Path) -> None:
    text = "é" * 50 + "\n" + "東" * 50
    path = write(tmp_path, text.encode("utf-8"))
    for block_bytes in (1, 2, 3, 5, 7):
        assert joined_text(load_txt(path, block_bytes=block_bytes)) == text


def test_segments_end_at_a_newline_near_the_block_end(tmp_path: Path) -> None:
    text = "".join(f"line number {n}\n" for n in range(200))
    path = write(tmp_path, text.encode("utf-8"))
    segments = list(load_txt(path, block_bytes=100).segments)
    assert len(segments) > 20
    assert all(segment.text.endswith("\n") for segment in segments)
    assert all(50 <= len(segment.text) <= 101 for segment in segments[:-1])


def test_long_lines_are_cut_after_a_space_else_at_the_block_size(
    tmp_path: Path,
) -> None:
    words = "word " * 100
    path = write(tmp_path, words.encode("ascii"), "words.txt")
    segments = list(load_txt(path, block_bytes=32).segments)
    assert all(segment.text.endswith(" ") for segment in segments)

    solid = "x" * 100
    path = write(tmp_path, solid.encode("ascii"), "solid.txt")
    lengths = [len(segment.text) for segment in load_txt(path, block_bytes=32).segments]
    assert lengths == [32, 32, 32, 4]


def test_crlf_is_kept_and_never_split(tmp_path: Path) -> None:
    text = "".join(f"row {n:03}\r\n" for n in range(50))
    path = write(tmp_path, text.encode("ascii"))
    segments = list(load_txt(path, block_bytes=24).segments)
    assert "".join(segment.text for segment in segments) == text
    assert all(segment.text.endswith("\r\n") for segment in segments)


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1), block_bytes=st.integers(1, 64))
def test_any_utf8_text_comes_back_whole(text: str, block_bytes: int) -> None:
    # A leading U+FEFF is read as a UTF-8 byte order mark, so it is dropped.
    expected = text.removeprefix("\ufeff")
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), text.encode("utf-8"))
        if "\x00" in expected:
            with pytest.raises(LoadError, match=r"^binary file$"):
                load_txt(path, block_bytes=block_bytes)
        elif not expected.strip():
            with pytest.raises(LoadError, match=r"^empty file$"):
                load_txt(path, block_bytes=block_bytes)
        else:
            document = load_txt(path, block_bytes=block_bytes)
            assert joined_text(document) == expected


def test_segments_can_be_iterated_again(tmp_path: Path) -> None:
    path = write(tmp_path, TEXT.encode("utf-8"))
    document = load_txt(path, block_bytes=8)
    assert list(document.segments) == list(document.segments)


def test_binary_file_named_txt(tmp_path: Path) -> None:
    path = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(LoadError, match=r"^binary file$"):
        load_txt(path)


def test_nul_byte_past_the_sniffed_head_is_not_binary(tmp_path: Path) -> None:
    data = b"a" * 9000 + b"\x00b\n"
    path = write(tmp_path, data)
    assert joined_text(load_txt(path)) == data.decode("ascii")


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  ", codecs.BOM_UTF8 + b" \n"])
def test_empty_or_only_whitespace(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    with pytest.raises(LoadError, match=r"^empty file$"):
        load_txt(path, block_bytes=4)


def test_invalid_bytes_after_a_bom_are_replaced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, codecs.BOM_UTF8 + b"caf\xe9 ok\n")
    with caplog.at_level(logging.WARNING, logger="ingest.loaders.txt"):
        document = load_txt(path)
    assert joined_text(document) == "caf\ufffd ok\n"
    assert "byte order mark" in caplog.text


def test_file_changed_after_load(tmp_path: Path) -> None:
    path = write(tmp_path, b"first version\n")
    document = load_txt(path)
    path.write_bytes(b"a longer second version\n")
    with pytest.raises(LoadError, match="file changed while reading"):
        list(document.segments)


def test_file_vanished_after_load(tmp_path: Path) -> None:
    path = write(tmp_path, b"soon gone\n")
    document = load_txt(path)
    path.unlink()
    with pytest.raises(LoadError, match=r"^file vanished$"):
        list(document.segments)


def test_hundred_megabytes_stream_in_bounded_memory(tmp_path: Path) -> None:
    line = b"The quick brown fox jumps over the lazy dog, again and again.\n"
    block = line * (1_000_000 // len(line))
    path = tmp_path / "big.txt"
    with path.open("wb") as handle:
        for _ in range(100):
            handle.write(block)
    size = path.stat().st_size
    assert size > 99_000_000

    tracemalloc.start()
    try:
        document = load_txt(path)
        characters = 0
        rehash = hashlib.sha256()
        for segment in document.segments:
            characters += len(segment.text)
            rehash.update(segment.text.encode("ascii"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert characters == size
    assert rehash.hexdigest() == document.content_hash
    assert peak < 30_000_000, f"peak Python allocation {peak / 1e6:.1f} MB"
