"""The walker: order, hidden and excluded entries, symlinks, problems."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.walk import WalkItem, WalkStats, walk


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("text\n", encoding="utf-8")


def relative(items: list[WalkItem], root: Path) -> list[str]:
    return [item.path.relative_to(root).as_posix() for item in items]


def test_sorted_depth_first_supported_files_only(tmp_path: Path) -> None:
    touch(tmp_path, "c.html", "b.txt", "a/x.md", "a/sub/y.pdf", "a/z.docx")
    touch(tmp_path, "data.csv", "README", "a/sub/image.png")
    stats = WalkStats()
    items = list(walk([tmp_path], stats=stats))
    assert all(item.problem is None for item in items)
    assert relative(items, tmp_path) == [
        "a/sub/y.pdf",
        "a/x.md",
        "a/z.docx",
        "b.txt",
        "c.html",
    ]
    assert (stats.files, stats.unsupported, stats.problems) == (5, 3, 0)


def test_hidden_entries_are_skipped_unless_named(tmp_path: Path) -> None:
    touch(tmp_path, ".hidden.txt", ".git/notes.txt", "shown.txt")
    stats = WalkStats()
    assert relative(list(walk([tmp_path], stats=stats)), tmp_path) == ["shown.txt"]
    assert stats.hidden == 2

    [item] = walk([tmp_path / ".hidden.txt"])
    assert item == WalkItem(tmp_path / ".hidden.txt")
    assert relative(list(walk([tmp_path / ".git"])), tmp_path) == [".git/notes.txt"]


def test_exclude_by_name_and_by_relative_path(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "keep.md",
        "draft-1.md",
        "archive/old.txt",
        "archive/keep/deep.txt",
        "node_modules/pkg/readme.md",
        "docs/node_modules/x.md",
    )
    stats = WalkStats()
    exclude = ["draft-*", "archive/*", "node_modules"]
    items = list(walk([tmp_path], exclude, stats=stats))
    assert relative(items, tmp_path) == ["keep.md"]
    assert stats.excluded == 5


def test_exclude_applies_to_files_named_directly(tmp_path: Path) -> None:
    touch(tmp_path, "draft.md", "final.md")
    paths = [tmp_path / "draft.md", tmp_path / "final.md"]
    assert relative(list(walk(paths, ["draft*"])), tmp_path) == ["final.md"]


def test_missing_path_is_a_problem_and_the_walk_goes_on(tmp_path: Path) -> None:
    touch(tmp_path, "real/doc.txt")
    missing = tmp_path / "nowhere"
    items = list(walk([missing, tmp_path / "real"]))
    assert items == [
        WalkItem(missing, "does not exist"),
        WalkItem(tmp_path / "real" / "doc.txt"),
    ]


def test_unsupported_file_named_directly_is_a_problem(tmp_path: Path) -> None:
    touch(tmp_path, "table.csv")
    assert list(walk([tmp_path / "table.csv"])) == [
        WalkItem(tmp_path / "table.csv", "unsupported file type")
    ]


def test_symlink_loop_is_walked_once(tmp_path: Path) -> None:
    touch(tmp_path, "a/doc.txt", "a/b/deep.md")
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "self").symlink_to(".", target_is_directory=True)
    stats = WalkStats()
    items = list(walk([tmp_path], stats=stats))
    assert relative(items, tmp_path) == ["a/b/deep.md", "a/doc.txt"]
    assert stats.repeated == 2


def test_symlinks_inside_the_folder_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(root, "shared/shared.md", "elsewhere/note.txt")
    (root / "linked").symlink_to(root / "shared", target_is_directory=True)
    (root / "alias.txt").symlink_to(root / "elsewhere" / "note.txt")
    items = list(walk([root]))
    # The same file reached twice is yielded once, under the first path.
    assert relative(items, root) == ["alias.txt", "linked/shared.md"]
    assert all(item.root == root.resolve() for item in items)


def test_symlinks_leading_outside_the_folder_are_refused(tmp_path: Path) -> None:
    """Whoever may write into a shared folder must not index the server's files."""
    outside = tmp_path / "outside"
    touch(outside, "secret.md", "other/key.txt")
    root = tmp_path / "root"
    touch(root, "own.txt")
    (root / "secret.md").symlink_to(outside / "secret.md")
    (root / "other").symlink_to(outside / "other", target_is_directory=True)
    items = list(walk([root]))
    assert [(i.path.name, i.problem) for i in items] == [
        ("other", "link leads outside the folder"),
        ("own.txt", None),
        ("secret.md", "link leads outside the folder"),
    ]
    # Named directly, a link is the user's own choice and is followed.
    [direct] = walk([root / "secret.md"])
    assert direct.problem is None
    assert direct.root == outside.resolve()


def test_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    expected = [WalkItem(tmp_path / "gone.txt", "broken symlink")]
    assert list(walk([tmp_path])) == expected
    assert list(walk([tmp_path / "gone.txt"])) == expected


def test_overlapping_paths_yield_each_file_once(tmp_path: Path) -> None:
    touch(tmp_path, "a/one.txt", "b/two.txt")
    paths = [tmp_path, tmp_path / "a", tmp_path / "a" / "one.txt"]
    assert relative(list(walk(paths)), tmp_path) == ["a/one.txt", "b/two.txt"]


def test_special_files_are_passed_over(tmp_path: Path) -> None:
    touch(tmp_path, "doc.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    assert relative(list(walk([tmp_path])), tmp_path) == ["doc.txt"]
    assert list(walk([tmp_path / "pipe.txt"])) == [
        WalkItem(tmp_path / "pipe.txt", "not a regular file")
    ]


def test_unlistable_folder_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path, "locked/secret.txt", "open/doc.txt")
    locked = tmp_path / "locked"
    locked.chmod(0)
    if os.geteuid() == 0:
        # Root lists any folder; refuse this one the way the kernel would.
        real_scandir = os.scandir

        def refusing_scandir(
            path: str | os.PathLike[str],
        ) -> Iterator[os.DirEntry[str]]:
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", refusing_scandir)
    try:
        stats = WalkStats()
        items = list(walk([tmp_path], stats=stats))
    finally:
        locked.chmod(0o755)
    assert items == [
        WalkItem(locked, "permission denied"),
        WalkItem(tmp_path / "open" / "doc.txt"),
    ]
    assert (stats.problems, stats.files) == (1, 1)
