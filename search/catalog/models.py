"""The catalog's tables: documents, chunks, jobs, cached embeddings, index settings.

The catalog is the source of truth; the vector store is an index of it. A
document's points carry the ``version`` (content hash) they were made from,
and only the document's ``active_version`` counts: a changed file is written
beside the old one and switched over in one commit.

The schema is made only by the Alembic revisions in migrations/; these models
describe it for queries and must stay in step with the newest revision (a
test compares them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DocumentStatus:
    PENDING = "pending"
    INDEXED = "indexed"
    FAILED = "failed"
    # Out of search, its points being deleted (ingest.consistency).
    REMOVING = "removing"


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_path: Mapped[str] = mapped_column(Text, unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    file_type: Mapped[str] = mapped_column(String(16), default="", index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    modified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    author: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(
        String(16), default=DocumentStatus.PENDING, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    active_version: Mapped[str | None] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The folder (or, for a file named on its own, the file's folder) the
    # ingest found it under: a download must resolve inside it.
    root_path: Mapped[str | None] = mapped_column(Text)
    # Runs that began on this document's current file without finishing it.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )
    group_rows: Mapped[list[DocumentGroup]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="DocumentGroup.name",
    )

    @property
    def access_groups(self) -> list[str]:
        """The groups that may read the document; none: see search.access."""
        return [row.name for row in self.group_rows]

    @access_groups.setter
    def access_groups(self, names: Iterable[str]) -> None:
        wanted = sorted(set(names))
        if wanted != self.access_groups:
            self.group_rows = [DocumentGroup(name=name) for name in wanted]


class DocumentGroup(Base):
    """One access group of one document (a document with none: see search.access)."""

    __tablename__ = "document_groups"

    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("document_id", "version", "ordinal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(64))
    ordinal: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int] = mapped_column(BigInteger)
    char_end: Mapped[int] = mapped_column(BigInteger)
    page: Mapped[int | None] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[str] = mapped_column(String(64))
    # Keyword terms (search.analysis) in the chunk; None before revision 0002.
    term_count: Mapped[int | None] = mapped_column(Integer)
    # The job whose run wrote the row (None outside a job, or before 0005):
    # while that job holds a live lease, its rows of versions not yet active
    # are its work in progress, which no other run's sweep may delete.
    writer: Mapped[int | None] = mapped_column(Integer)

    document: Mapped[Document] = relationship(back_populates="chunks")


class CachedEmbedding(Base):
    """Embeddings by (model, chunk text hash): unchanged text is never re-encoded."""

    __tablename__ = "embedding_cache"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class IndexSetting(Base):
    """One setting of the index, by key (see search.active_index)."""

    __tablename__ = "index_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(
        String(16), default=JobStatus.QUEUED, index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Runs begun, and the earliest time the next may begin (retry backoff).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # While running: the worker renews it; once it passes, the job is free.
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
