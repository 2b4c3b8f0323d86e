"""the booking recount trigger can be held off by a bulk load, in its own transaction only

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

The per-statement recount of 0003 rewrites an encounter once per statement that touches its
bookings: with executemany, once per booking, and every rewrite leaves a dead row version behind
(393,827 of them after loading the standard world). `load-data` now writes its bookings with the
recount held off (`SET LOCAL encounters.bulk_load = on`, visible to its own transaction only) and
recounts each touched encounter once itself. Every other writer's statements are recounted as
before. SQLite's row triggers are unchanged: load-data drops and remakes them inside its own
transaction (SQLite has one writer at a time, and its DDL is transactional).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RECOUNT = (
    "UPDATE encounters SET active_bookings = (SELECT count(*) FROM bookings"
    " WHERE bookings.encounter_id = encounters.id AND NOT bookings.cancelled)"
)
_FUNCTION = """
    CREATE OR REPLACE FUNCTION recount_active_bookings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {hold_off}
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
"""
_HOLD_OFF = "IF current_setting('encounters.bulk_load', true) = 'on' THEN RETURN NULL; END IF;"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION.format(hold_off=_HOLD_OFF, recount=_RECOUNT))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION.format(hold_off="", recount=_RECOUNT))
