"""Settings of the index kept in the catalog: which model and collection are live.

``index_settings`` holds one row per key. ``active_index`` names the model
searches encode queries with and the collection they query; ``semsearch
reindex`` builds a collection for another model beside it and switches this
row in one commit. A catalog without the row uses the configured model.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_index_settings")),
    )


def downgrade() -> None:
    op.drop_table("index_settings")
