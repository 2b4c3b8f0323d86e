"""each encounter's count of active bookings, kept by triggers; the target's bookings by user

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A listed encounter's status probed its active bookings through an index, once per row: three
quarters of PostgreSQL's work on a long list. `encounters.active_bookings` now holds that count,
kept by triggers in the transaction of every write to `bookings` (load-data, demo-data, or any
other writer): `Full` compares two columns of the row. `Booked` reads the target's few active
bookings once per statement, through `ix_bookings_user_active`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RECOUNT = (
    "UPDATE encounters SET active_bookings = (SELECT count(*) FROM bookings"
    " WHERE bookings.encounter_id = encounters.id AND {active})"
)
# PostgreSQL: once per statement (a COPY or a batch of upserts recounts each encounter once).
_POSTGRESQL = [
    """
    CREATE FUNCTION recount_active_bookings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            {recount} WHERE id IN (SELECT encounter_id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            {recount} WHERE id IN (SELECT encounter_id FROM old_rows);
        ELSE
            {recount} WHERE id IN (
                SELECT encounter_id FROM old_rows UNION SELECT encounter_id FROM new_rows
            );
        END IF;
        RETURN NULL;
    END $$
    """.format(recount=_RECOUNT.format(active="NOT bookings.cancelled")),
    "CREATE TRIGGER bookings_inserted AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION recount_active_bookings()",
    "CREATE TRIGGER bookings_updated AFTER UPDATE ON bookings"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION recount_active_bookings()",
    "CREATE TRIGGER bookings_deleted AFTER DELETE ON bookings REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION recount_active_bookings()",
]
_SQLITE_RECOUNT = (
    _RECOUNT.format(active="bookings.cancelled = 0") + " WHERE id = {row}.encounter_id;"
)
_SQLITE = [
    "CREATE TRIGGER bookings_inserted AFTER INSERT ON bookings BEGIN "
    + _SQLITE_RECOUNT.format(row="NEW")
    + " END",
    "CREATE TRIGGER bookings_updated AFTER UPDATE ON bookings BEGIN "
    + _SQLITE_RECOUNT.format(row="OLD")
    + " "
    + _SQLITE_RECOUNT.format(row="NEW")
    + " END",
    "CREATE TRIGGER bookings_deleted AFTER DELETE ON bookings BEGIN "
    + _SQLITE_RECOUNT.format(row="OLD")
    + " END",
]
_TRIGGERS = ("bookings_inserted", "bookings_updated", "bookings_deleted")


def upgrade() -> None:
    op.add_column(
        "encounters",
        sa.Column("active_bookings", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index(
        "ix_bookings_user_active",
        "bookings",
        ["user_id", "encounter_id"],
        unique=False,
        postgresql_where=sa.text("NOT cancelled"),
        sqlite_where=sa.text("cancelled = 0"),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRESQL if postgresql else _SQLITE:
        op.execute(statement)
    active = "NOT bookings.cancelled" if postgresql else "bookings.cancelled = 0"
    op.execute(_RECOUNT.format(active=active))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for trigger in _TRIGGERS:
        op.execute(
            f"DROP TRIGGER {trigger} ON bookings" if postgresql else f"DROP TRIGGER {trigger}"
        )
    if postgresql:
        op.execute("DROP FUNCTION recount_active_bookings()")
    op.drop_index("ix_bookings_user_active", table_name="bookings")
    op.drop_column("encounters", "active_bookings")
