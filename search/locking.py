"""One process at a time on the embedded store: an advisory file lock.

The lock file also says who holds it (pid, role), so that another command can
name the holder and hand its work over. The operating system releases the
lock when the holder exits, even when it crashes, so no stale lock is left.
On systems without ``fcntl`` (Windows) only qdrant-edge's own lock guards the
store, and a second process is told so when it fails to open it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any

from search.errors import StoreLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class ProcessLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, role: str) -> None:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise StoreLockedError(self.describe_holder()) from None
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "role": role, "argv": sys.argv[:3]}, handle)
        handle.flush()
        self._file = handle

    def holder(self) -> dict[str, Any] | None:
        try:
            owner: dict[str, Any] = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return owner

    def describe_holder(self) -> str:
        where = self.path.parent
        owner = self.holder()
        if owner is None:
            return f"the embedded store in {where} is open in another process"
        return (
            f"the embedded store in {where} is open in process {owner.get('pid')} "
            f"(semsearch {owner.get('role')}); stop that process, or set QDRANT_URL "
            "to a Qdrant server so that several processes can share the index"
        )

    def release(self) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.close()
        self._file = None
