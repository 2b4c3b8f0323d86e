"""each encounter holds its center's JSON members: the list reads no center row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

The list statement joined every encounter to its center for the center's members (revision
0005's `centers.json_members`): a hash of every center built for each request, and each row
probed into it, a quarter of the statement's CPU (233 against 167 µs at 20 items, 967 against
783 µs at 256, the same bytes read from the encounter instead). Each encounter now holds a copy,
`encounters.center_json_members`, which triggers keep equal to its center's in the same
transaction as any write:
- before an encounter is inserted, or its `center_id` (or the copy itself) updated, the copy is
  read from its center;
- after a center's members change (its name or reference id), every encounter of it gets the new
  copy.
Nothing can be stale after a commit, and nothing is cached: a renamed center shows on the next
request. The copy has no NOT NULL: an encounter of a center that does not exist fails on its
foreign key, with the error that says so.

Adding the column to a database that holds encounters writes each of them once (the copy, under
a lock): run `VACUUM (ANALYZE) encounters` afterwards, since autovacuum may be off. SQLite has no
copy: it keeps the join and the app's own encoder (service/encounters.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COPY = """
CREATE FUNCTION encounter_center_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT json_members INTO NEW.center_json_members FROM centers WHERE id = NEW.center_id;
    RETURN NEW;
END $$
"""
_SPREAD = """
CREATE FUNCTION center_members_to_encounters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE encounters SET center_json_members = NEW.json_members WHERE center_id = NEW.id;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE encounters ADD COLUMN center_json_members text")
    op.execute(
        "UPDATE encounters SET center_json_members = centers.json_members"
        " FROM centers WHERE centers.id = encounters.center_id"
    )
    op.execute(_COPY)
    op.execute(_SPREAD)
    # Not on every update: the booking triggers' recount (revision 0003) touches neither column.
    op.execute(
        "CREATE TRIGGER encounters_center_members BEFORE INSERT OR UPDATE OF center_id,"
        " center_json_members ON encounters FOR EACH ROW EXECUTE FUNCTION"
        " encounter_center_members()"
    )
    op.execute(
        "CREATE TRIGGER centers_members_to_encounters AFTER UPDATE ON centers FOR EACH ROW"
        " WHEN (OLD.json_members IS DISTINCT FROM NEW.json_members)"
        " EXECUTE FUNCTION center_members_to_encounters()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER centers_members_to_encounters ON centers")
    op.execute("DROP TRIGGER encounters_center_members ON encounters")
    op.execute("DROP FUNCTION center_members_to_encounters()")
    op.execute("DROP FUNCTION encounter_center_members()")
    op.execute("ALTER TABLE encounters DROP COLUMN center_json_members")
