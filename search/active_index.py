"""Which model and collection searches use: a setting of the catalog.

A collection holds one model's vectors. The catalog's ``active_index`` row
names the model queries are encoded with and the collection they search;
``semsearch reindex`` builds another model's collection beside the live one
and switches this row in one commit, so every process sees one index or the
other, never a mix. With a Qdrant server the alias :data:`ACTIVE_ALIAS` is
moved to the new collection as well, for tools that query Qdrant directly;
semsearch's own processes follow the row, because a query vector has to come
from the model of the collection it searches, which an alias cannot say.

A catalog without the row is on the configured model (``SEMSEARCH_MODEL``);
the first ingest records it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from search.catalog.models import IndexSetting, utcnow

ACTIVE_KEY = "active_index"
ACTIVE_ALIAS = "semsearch-active"


@dataclass(frozen=True)
class ActiveIndex:
    """A model and its collection.

    ``model`` is how it was named (a registered name or a folder), what the
    encoder loads; ``identity`` is the weights' name (search.models), which
    the collection name and the embedding cache are keyed by.
    """

    model: str
    identity: str
    collection: str
    # The model the index was first built with: document versions name it
    # (ingest.pipeline), and a reindex carries it over with the chunks.
    chunked_with: str = ""

    def __post_init__(self) -> None:
        if not self.chunked_with:
            object.__setattr__(self, "chunked_with", self.model)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ActiveIndex:
        return cls(
            model=str(value["model"]),
            identity=str(value["identity"]),
            collection=str(value["collection"]),
            chunked_with=str(value.get("chunked_with") or value["model"]),
        )


def index_for(model: str | Path) -> ActiveIndex:
    """The index ``model`` gets: its identity and its collection's name."""
    from search.app import collection_name
    from search.models import model_identity

    identity = model_identity(model)
    return ActiveIndex(str(model), identity, collection_name(identity))


def read_active(
    session: Session, lock: bool = False, exclusive: bool = False
) -> ActiveIndex | None:
    """The recorded active index, if any.

    ``lock`` holds the row until the transaction ends: shared (activations
    of ingest, which may run side by side) or ``exclusive`` (the switch), so
    that no activation commits between a switch's last look and its commit.
    PostgreSQL locks the row; SQLite takes its database write lock (a no-op
    update), which orders all of them.
    """
    if lock or exclusive:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(
                update(IndexSetting)
                .where(IndexSetting.key == ACTIVE_KEY)
                .values(key=IndexSetting.key)
                .execution_options(synchronize_session=False)
            )
        query = select(IndexSetting).where(IndexSetting.key == ACTIVE_KEY)
        query = query.with_for_update(read=not exclusive)
        row = session.scalars(query).one_or_none()
    else:
        row = session.get(IndexSetting, ACTIVE_KEY)
    return ActiveIndex.from_dict(row.value) if row is not None else None


def write_active(session: Session, active: ActiveIndex) -> None:
    """Record ``active`` in the open transaction (the caller commits)."""
    row = session.get(IndexSetting, ACTIVE_KEY)
    if row is None:
        session.add(IndexSetting(key=ACTIVE_KEY, value=active.as_dict()))
    else:
        row.value = active.as_dict()
        row.updated_at = utcnow()


def load_active(engine: Engine) -> ActiveIndex | None:
    with Session(engine) as session:
        return read_active(session)
