"""Access groups by path: a rules file mapping path patterns to groups.

The file (``SEMSEARCH_ACCESS_RULES`` or ``semsearch ingest --rules``) is TOML::

    [[rule]]
    match = ["hr/**", "**/salaries/*.pdf"]
    groups = ["hr"]

    [[rule]]
    match = ["/srv/share/legal/**"]
    groups = ["legal", "board"]

A pattern is matched against the file's path relative to the folder being
ingested, in POSIX form, or, when it starts with ``/``, against the file's
absolute path. ``*`` and ``?`` stay within one folder name; ``**`` spans any
number of folders (``hr/**`` is everything under ``hr``). A file gets the
groups of every rule that matches it, added to ``--group`` and its own front
matter. A rules file that cannot be read or holds anything unexpected stops
the ingest with a message saying where: a typo must not publish documents.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from search.access import check_groups
from search.errors import InvalidInputError


@dataclass(frozen=True)
class Rule:
    patterns: tuple[str, ...]
    groups: tuple[str, ...]
    _compiled: tuple[re.Pattern[str], ...]

    def matches(self, relative: str, absolute: str) -> bool:
        return any(
            pattern.fullmatch(absolute if raw.startswith("/") else relative)
            for raw, pattern in zip(self.patterns, self._compiled, strict=True)
        )


@dataclass(frozen=True)
class AccessRules:
    rules: tuple[Rule, ...] = ()

    def groups_for(self, path: Path, root: Path | None) -> tuple[str, ...]:
        """The groups every matching rule gives ``path`` (found under ``root``)."""
        if not self.rules:
            return ()
        absolute = PurePosixPath(path.resolve().as_posix()).as_posix()
        relative = absolute
        if root is not None:
            with contextlib.suppress(ValueError):  # not under root: absolute
                relative = path.resolve().relative_to(root.resolve()).as_posix()
        found: set[str] = set()
        for rule in self.rules:
            if rule.matches(relative, absolute):
                found.update(rule.groups)
        return tuple(sorted(found))


def load_rules(path: Path | None) -> AccessRules:
    """The rules in ``path``; no file named: no rules."""
    if path is None:
        return AccessRules()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(
            f"access rules {path}: cannot read ({exc.strerror or exc})"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"access rules {path}: not valid TOML ({exc})"
        ) from None
    unknown = set(data) - {"rule"}
    if unknown:
        raise InvalidInputError(
            f"access rules {path}: unknown key {sorted(unknown)[0]!r}; "
            "use [[rule]] tables"
        )
    entries = data.get("rule", [])
    if not isinstance(entries, list):
        raise InvalidInputError(f"access rules {path}: 'rule' must be [[rule]] tables")
    return AccessRules(
        tuple(_rule(entry, path, n) for n, entry in enumerate(entries, 1))
    )


def _rule(entry: object, path: Path, number: int) -> Rule:
    where = f"access rules {path}, rule {number}"
    if not isinstance(entry, dict):
        raise InvalidInputError(f"{where}: not a table")
    unknown = set(entry) - {"match", "groups"}
    if unknown:
        raise InvalidInputError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    patterns = entry.get("match")
    groups = entry.get("groups")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise InvalidInputError(f"{where}: 'match' must list path patterns")
    if not isinstance(groups, list) or not groups:
        raise InvalidInputError(f"{where}: 'groups' must list at least one group")
    try:
        checked = check_groups(groups)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    patterns = [p.strip() for p in patterns]
    return Rule(tuple(patterns), checked, tuple(glob_pattern(p) for p in patterns))


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """A compiled regular expression for a path glob with ``**``."""
    pattern = pattern.rstrip("/")
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))
