"""Chunk rows name the job that wrote them.

With several workers on one catalog, the rows of a version another job is
still writing look like what an interrupted run left; ``chunks.writer`` tells
them apart: rows whose writer holds a live lease are left alone by sweeps.
Rows from before this revision have none and are treated as any run's.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("writer", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("writer")
