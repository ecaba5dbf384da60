"""Finding the files to ingest under the paths a user names.

:func:`walk` yields a :class:`WalkItem` per file to load, and one per problem
(a path that does not exist, a folder that cannot be listed), and goes on
after a problem. Files the loaders do not support are skipped without a
problem item, as are hidden and excluded entries; :class:`WalkStats` counts
each kind, for the ingest summary.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.loaders import FILE_TYPES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalkItem:
    """A file to load (``problem`` is None), or a path that could not be walked.

    ``problem`` is a short reason: ``"does not exist"``, ``"broken symlink"``,
    ``"permission denied"``, ``"unsupported file type"`` (for a file named
    directly), ``"not a regular file"``, ``"link leads outside the folder"``
    or ``"cannot read: ..."``. ``root`` is the walked folder the file was
    found under (a file named directly: its own folder).
    """

    path: Path
    problem: str | None = None
    root: Path | None = field(default=None, compare=False)


@dataclass
class WalkStats:
    """What a walk passed over, by kind; filled in while the walk is iterated."""

    files: int = 0
    problems: int = 0
    unsupported: int = 0
    hidden: int = 0
    excluded: int = 0
    repeated: int = 0


def walk(
    paths: Sequence[Path],
    exclude: Sequence[str] = (),
    *,
    extensions: Collection[str] = FILE_TYPES.keys(),
    stats: WalkStats | None = None,
) -> Iterator[WalkItem]:
    """Yield the supported files under ``paths``, and the problems met there.

    Folders are walked recursively, entries in sorted order of their names
    (depth first, so the yielded paths come out sorted within a folder).
    Inside a folder, entries whose name starts with "." are skipped, files
    whose lowercase extension is not in ``extensions`` are skipped, and so is
    any entry matching one of the ``exclude`` glob patterns (:mod:`fnmatch`,
    case-sensitive) on its name or on its path relative to the walked folder,
    in POSIX form ("build", "*.log", "drafts/*"). An excluded folder is not
    entered.

    A path given directly is always considered, hidden or not: a folder is
    walked; a file is yielded, or a problem if its extension is unsupported;
    ``exclude`` applies to it by name. Symlinks are followed; a folder reached
    twice (a symlink loop, overlapping paths) is walked once, under the first
    path that reached it, and a file is yielded once. A symlink inside a
    walked folder that resolves outside it is a problem, not a document:
    whoever may write into a shared folder must not be able to index files
    elsewhere on the server through a link. Pass ``stats`` to get the counts
    of what was skipped.
    """
    state = _Walk(tuple(exclude), frozenset(extensions), stats or WalkStats())
    for path in paths:
        yield from state.root(path)


class _Walk:
    def __init__(
        self, exclude: tuple[str, ...], extensions: frozenset[str], stats: WalkStats
    ) -> None:
        self.exclude = exclude
        self.extensions = extensions
        self.stats = stats
        self.seen: set[tuple[int, int]] = set()

    def root(self, path: Path) -> Iterator[WalkItem]:
        try:
            info = path.stat()
        except FileNotFoundError:
            reason = "broken symlink" if path.is_symlink() else "does not exist"
            yield self.problem(path, reason)
            return
        except OSError as exc:
            yield self.problem(path, _reason(exc))
            return

        if stat.S_ISDIR(info.st_mode):
            if self.first_visit(info):
                yield from self.folder(path)
        elif not stat.S_ISREG(info.st_mode):
            yield self.problem(path, "not a regular file")
        elif self.excluded(path.name, path.name):
            self.stats.excluded += 1
        elif path.suffix.lower() not in self.extensions:
            yield self.problem(path, "unsupported file type")
        elif self.first_visit(info):
            yield self.found(path, path.resolve().parent)

    def folder(self, top: Path) -> Iterator[WalkItem]:
        # A stack of sorted listings, not recursion: depth is unbounded.
        resolved_top = top.resolve()
        stack = [iter(self.listing(top))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if isinstance(entry, WalkItem):
                yield entry
                continue

            path = Path(entry.path)
            if entry.name.startswith("."):
                self.stats.hidden += 1
                continue
            if self.excluded(entry.name, path.relative_to(top).as_posix()):
                self.stats.excluded += 1
                continue
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
                if (
                    entry.is_symlink()
                    and (is_dir or is_file)
                    and not path.resolve().is_relative_to(resolved_top)
                ):
                    yield self.problem(path, "link leads outside the folder")
                    continue
                if (is_dir or is_file) and not self.first_visit(entry.stat()):
                    continue
            except OSError as exc:
                yield self.problem(path, _reason(exc))
                continue

            if is_dir:
                stack.append(iter(self.listing(path)))
            elif not is_file:
                if entry.is_symlink():
                    yield self.problem(path, "broken symlink")
                # Sockets, pipes and devices are not documents: passed over.
            elif path.suffix.lower() in self.extensions:
                yield self.found(path, resolved_top)
            else:
                self.stats.unsupported += 1

    def listing(self, folder: Path) -> Sequence[os.DirEntry[str] | WalkItem]:
        """The folder's entries sorted by name, or the problem listing it."""
        try:
            with os.scandir(folder) as entries:
                return sorted(entries, key=lambda entry: entry.name)
        except OSError as exc:
            return [self.problem(folder, _reason(exc))]

    def excluded(self, name: str, relative: str) -> bool:
        return any(
            fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(relative, pattern)
            for pattern in self.exclude
        )

    def first_visit(self, info: os.stat_result) -> bool:
        key = (info.st_dev, info.st_ino)
        if key in self.seen:
            self.stats.repeated += 1
            logger.debug("already walked: device %d inode %d", *key)
            return False
        self.seen.add(key)
        return True

    def found(self, path: Path, root: Path) -> WalkItem:
        self.stats.files += 1
        return WalkItem(path, root=root)

    def problem(self, path: Path, reason: str) -> WalkItem:
        self.stats.problems += 1
        return WalkItem(path, reason)


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    return f"cannot read: {exc.strerror or exc}"
