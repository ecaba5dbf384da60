"""Access groups in their own table, each document's ingest root, job retries.

Groups move from a JSON column to ``document_groups`` so that the catalog can
filter by them in SQL on every backend, as the vector store does. Documents
record the root folder they were found under (downloads must resolve inside
it) and how many runs began on them without finishing (a file that kills the
worker is given up after a few); jobs count their attempts and when the next
may start.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 16:50:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    groups = op.create_table(
        "document_groups",
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_groups_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", "name", name=op.f("pk_document_groups")),
    )
    op.create_index(
        op.f("ix_document_groups_name"), "document_groups", ["name"], unique=False
    )
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, access_groups FROM documents"))
    copied = []
    for document_id, value in rows:
        names = json.loads(value) if isinstance(value, str) else value
        for name in sorted(set(names or ())):
            copied.append({"document_id": document_id, "name": name})
    if copied:
        op.bulk_insert(groups, copied)
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("access_groups")
        batch.add_column(sa.Column("root_path", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("not_before", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("not_before")
        batch.drop_column("attempts")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("attempts")
        batch.drop_column("root_path")
        batch.add_column(sa.Column("access_groups", sa.JSON(), nullable=True))
    connection = op.get_bind()
    names: dict[str, list[str]] = {}
    for document_id, name in connection.execute(
        sa.text("SELECT document_id, name FROM document_groups")
    ):
        names.setdefault(document_id, []).append(name)
    for document_id, values in names.items():
        connection.execute(
            sa.text("UPDATE documents SET access_groups = :groups WHERE id = :id"),
            {"groups": json.dumps(sorted(values)), "id": document_id},
        )
    op.drop_index(op.f("ix_document_groups_name"), table_name="document_groups")
    op.drop_table("document_groups")
