"""Files that kill the worker: counting interrupted reads, giving up on them.

A file whose reading kills the process (a parser crash, memory) would stop
every later run at the same place. So each changed file's row counts the runs
that began reading it (``documents.attempts``), in a commit of its own before
the read; a run that reads the file to the end resets the count. After
``settings.retry_attempts`` interrupted reads the file is recorded as failed,
and later runs pass it by until it changes.

Only the file being read when the process died is blamed: counts are reset
as soon as a file has been read, at the latest before its batch is encoded,
and the model is loaded before the first count (its load is no file's fault).
Reading overlaps encoding (ingest.stages), so a process killed while it
encodes also blames the file being read at that moment: an encoder that
kills the process each time at the same batch (memory) would, after the
attempts, give up a file that did no harm. A kill by the encoder is a bug
or a sizing problem, shown in the worker's log; the file's failure names
the attempts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from ingest.consistency import crash_on_reading
from search.catalog import repository as repo
from search.catalog.models import Document, utcnow

_IN_BATCH = 500


class Attempts:
    """The interrupted-read counts of one ingest run's documents."""

    def __init__(self, engine: Engine, limit: int, before_first: Callable[[], object]):
        self.engine = engine
        self.limit = limit
        self._before_first = before_first
        # Documents read to the end whose counts are not yet reset to 0.
        self._read: list[str] = []

    def given_up(self, attempts: int) -> str | None:
        """Why a file with ``attempts`` interrupted reads is not tried, if so."""
        if attempts < self.limit:
            return None
        return (
            f"gave up after {attempts} attempts: the ingest stopped while "
            "reading this file each time"
        )

    def begin(
        self, document_id: str, source: str, path: Path, attempts: int, has_row: bool
    ) -> None:
        """Count one more attempt at reading the file, in its own commit."""
        self._before_first()
        with Session(self.engine) as session:
            # Every row this commit changes, locked in id order first
            # (repository.lock_documents): no deadlock with another worker.
            repo.lock_documents(session, [document_id, *self._read])
            if has_row:
                session.execute(
                    update(Document)
                    .where(Document.id == document_id)
                    .values(attempts=attempts + 1, updated_at=utcnow())
                )
            else:
                # Another worker may add it meanwhile (a file two jobs share).
                repo.add_document_if_missing(
                    session,
                    document_id,
                    source,
                    path.suffix.lower().lstrip("."),
                    attempts=attempts + 1,
                )
            self.reset(session)
            session.commit()
        crash_on_reading(path)

    def read(self, document_id: str) -> None:
        """The file was read to the end: its count is reset with the next write."""
        self._read.append(document_id)

    def reset(self, session: Session) -> None:
        """Reset the counts of the files read to the end (the caller commits)."""
        read, self._read = sorted(set(self._read)), []
        for start in range(0, len(read), _IN_BATCH):
            repo.lock_documents(session, read[start : start + _IN_BATCH])
            session.execute(
                update(Document)
                .where(Document.id.in_(read[start : start + _IN_BATCH]))
                .values(attempts=0)
            )

    def settle(self) -> None:
        """Commit the pending resets now (before encoding a batch)."""
        if self._read:
            with Session(self.engine) as session:
                self.reset(session)
                session.commit()


def attempts_so_far(existing: Document | None, path: Path) -> int:
    """Interrupted attempts at reading the file as it is now.

    A file modified after the last attempt began is another file: it gets
    fresh attempts. (The catalog keeps no hash of a file that was never read
    to the end, so its modification time tells; a file put back with an old
    time keeps its count.)
    """
    if existing is None or not existing.attempts:
        return 0
    began = existing.updated_at
    if began.tzinfo is None:  # SQLite keeps no zone; the catalog writes UTC
        began = began.replace(tzinfo=UTC)
    try:
        modified = path.stat().st_mtime
    except OSError:
        return existing.attempts
    return 0 if modified > began.timestamp() else existing.attempts
