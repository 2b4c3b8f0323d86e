"""indexes for the list's status and for online encounters on SQLite

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The status of each listed encounter counts its active bookings and looks for the target's own:
a partial index on the active bookings answers both from the index alone. SQLite matches a partial
index only when the query spells its condition the same way, and SQLAlchemy writes a boolean
there as `is_online = 1`: the online index is rebuilt with that spelling (PostgreSQL's is kept).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_bookings_active",
        "bookings",
        ["encounter_id", "user_id"],
        unique=False,
        postgresql_where=sa.text("NOT cancelled"),
        sqlite_where=sa.text("cancelled = 0"),
    )
    _rebuild_online_index_on_sqlite("is_online = 1")


def downgrade() -> None:
    _rebuild_online_index_on_sqlite("is_online")
    op.drop_index("ix_bookings_active", table_name="bookings")


def _rebuild_online_index_on_sqlite(condition: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_encounters_online_unit_start", table_name="encounters")
    op.create_index(
        "ix_encounters_online_unit_start",
        "encounters",
        ["unit_number", "starts_at"],
        unique=False,
        sqlite_where=sa.text(condition),
    )
