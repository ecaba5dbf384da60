"""Who may read what: principals, access groups and the rule between them.

Every document carries a set of access groups (from ``--group`` at ingest,
its front matter's ``groups:`` and the rules file). A principal (a user and
their groups) may read a document when they share a group with it. A
document without groups is public or admins' only, as the ``ungrouped``
setting says; members of an admin group read everything. No principal at all
reads only what is public: access fails closed.

:meth:`AccessPolicy.access` turns a principal into an :class:`Access`, which
:func:`search.filters.build_filter` (the vector store) and the catalog's
queries (``search.catalog.repository``) both apply, so the two always agree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from search.errors import InvalidInputError

#: What a document without groups carries in the vector store instead, so
#: that one "any of" condition serves both: no real group may take the name.
UNGROUPED = "*"
MAX_GROUP_CHARS = 200
MAX_GROUPS = 100
_SEPARATORS = re.compile(r"[,\n]")


def check_group_name(name: object) -> str:
    """``name`` stripped, or an error saying why it cannot be a group name."""
    if not isinstance(name, str):
        raise InvalidInputError(f"a group name must be text, not {name!r}")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise InvalidInputError("a group name is empty")
    if cleaned == UNGROUPED:
        raise InvalidInputError(f"{UNGROUPED!r} is reserved and cannot be a group")
    if len(cleaned) > MAX_GROUP_CHARS:
        raise InvalidInputError(
            f"a group name is longer than {MAX_GROUP_CHARS} characters"
        )
    if "," in cleaned or any(unicodedata.category(c)[0] == "C" for c in cleaned):
        raise InvalidInputError(
            f"group {cleaned[:40]!r} holds a comma or a control character"
        )
    return cleaned


def check_groups(names: Iterable[object]) -> tuple[str, ...]:
    """Validated, de-duplicated and sorted group names."""
    groups = tuple(sorted({check_group_name(n) for n in names}))
    if len(groups) > MAX_GROUPS:
        raise InvalidInputError(f"more than {MAX_GROUPS} groups")
    return groups


def parse_groups(value: str | None) -> tuple[str, ...]:
    """Groups from a comma- or line-separated string (settings, headers)."""
    if not value:
        return ()
    return check_groups(part for part in _SEPARATORS.split(value) if part.strip())


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user name (for messages and logs) and their groups."""

    user: str | None = None
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", check_groups(self.groups))

    def describe(self) -> str:
        who = self.user or "anonymous"
        return f"{who} ({', '.join(self.groups)})" if self.groups else who


@dataclass(frozen=True)
class Access:
    """What one principal may read.

    ``everything`` (an admin) reads all; otherwise documents sharing one of
    ``groups``, and documents without groups when ``ungrouped`` is true.
    """

    groups: frozenset[str] = frozenset()
    ungrouped: bool = False
    everything: bool = False

    @classmethod
    def unrestricted(cls) -> Access:
        """Everything: for maintenance (check, repair, evaluation), never a user."""
        return cls(everything=True)

    def allows(self, document_groups: Iterable[str]) -> bool:
        if self.everything:
            return True
        names = {g for g in document_groups if g != UNGROUPED}
        if not names:
            return self.ungrouped
        return not names.isdisjoint(self.groups)

    def store_markers(self) -> tuple[str, ...] | None:
        """The ``groups`` payload values a readable point has; None: any."""
        if self.everything:
            return None
        markers = set(self.groups)
        if self.ungrouped:
            markers.add(UNGROUPED)
        return tuple(sorted(markers))


@dataclass(frozen=True)
class AccessPolicy:
    """The deployment's rule: are ungrouped documents public, who is admin."""

    ungrouped_public: bool = True
    admin_groups: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: object) -> AccessPolicy:
        return cls(
            ungrouped_public=getattr(settings, "ungrouped", "public") == "public",
            admin_groups=frozenset(getattr(settings, "admin_groups", ())),
        )

    def access(self, principal: Principal | None) -> Access:
        groups = frozenset(principal.groups) if principal else frozenset()
        if groups & self.admin_groups:
            return Access.unrestricted()
        return Access(groups=groups, ungrouped=self.ungrouped_public)
