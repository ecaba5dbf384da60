"""The dispatcher, and the rules every loader keeps whatever its format."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_samples import assert_file_facts, deny_reading, joined_text, make_sample

from ingest.documents import LoadError
from ingest.loaders import FILE_TYPES, file_type_of, load
from ingest.walk import WalkItem, walk
from search.errors import SemsearchError

FORMATS = ["txt", "md", "html", "pdf", "docx"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "txt"),
        ("a.TEXT", "txt"),
        ("a.md", "md"),
        ("a.markdown", "md"),
        ("a.html", "html"),
        ("a.HTM", "html"),
        ("a.pdf", "pdf"),
        ("a.docx", "docx"),
        ("a.doc", None),
        ("README", None),
    ],
)
def test_file_type_by_extension(name: str, expected: str | None) -> None:
    assert file_type_of(Path(name)) == expected


def test_every_extension_has_a_loader(tmp_path: Path) -> None:
    assert set(FILE_TYPES.values()) == set(FORMATS)
    path = tmp_path / "notes.markdown"
    path.write_text("# Hi\n\ntext\n", encoding="utf-8")
    assert load(path).file_type == "md"


@pytest.mark.parametrize("name", ["data.csv", "archive.tar.gz", "Makefile"])
def test_unsupported_type_is_a_load_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(LoadError, match="unsupported file type"):
        load(path)


def test_load_error_is_shown_to_users_as_it_is() -> None:
    error = LoadError("binary file", Path("x.txt"))
    assert isinstance(error, SemsearchError)
    assert str(error) == "binary file"
    assert error.path == Path("x.txt")


@pytest.mark.parametrize("file_type", FORMATS)
def test_segments_contiguous_and_file_facts(tmp_path: Path, file_type: str) -> None:
    path = make_sample(tmp_path, file_type)
    document = load(path)
    assert document.file_type == file_type
    assert document.path == path
    assert joined_text(document).strip()
    assert_file_facts(document, path)


@pytest.mark.parametrize("file_type", FORMATS)
def test_unreadable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_type: str
) -> None:
    path = make_sample(tmp_path, file_type)
    deny_reading(path, monkeypatch)
    with pytest.raises(LoadError, match=r"^permission denied$") as caught:
        load(path)
    assert caught.value.path == path


@pytest.mark.parametrize("file_type", FORMATS)
def test_file_vanished_between_walk_and_load(tmp_path: Path, file_type: str) -> None:
    path = make_sample(tmp_path, file_type)
    [item] = walk([tmp_path])
    assert item == WalkItem(path)
    path.unlink()
    with pytest.raises(LoadError, match=r"^file vanished$"):
        load(item.path)


@pytest.mark.parametrize("file_type", FORMATS)
def test_empty_file(tmp_path: Path, file_type: str) -> None:
    path = tmp_path / f"empty.{file_type}"
    path.write_bytes(b"")
    with pytest.raises(LoadError, match=r"^empty file$"):
        load(path)


def test_folder_with_a_file_extension(tmp_path: Path) -> None:
    folder = tmp_path / "looks.txt"
    folder.mkdir()
    with pytest.raises(LoadError, match="not a file"):
        load(folder)
