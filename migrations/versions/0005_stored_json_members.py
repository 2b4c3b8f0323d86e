"""the answer's JSON members each encounter and center row holds, written when the row is

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

PostgreSQL wrote each encounter of an answer in full for every request: about 2.3 µs a row of
expression evaluation (text of two times, escapes, a dozen concatenations), half the database's
CPU of a 256-item answer. The members that depend on the row alone are now written once, when
the row is: a generated column `json_members` on `encounters` (UnitNumber, Id, DateTime, EndDate,
Duration) and on `centers` (CenterId, CenterName, CenterReferenceId). A request's statement writes
only the status and IsOnline between them (service/encounters.py). PostgreSQL keeps a generated
column equal to its row on every insert and update: nothing can be stale, nothing is cached.

The expressions are service.json_sql's, generated from EncounterSchema and frozen here as this
revision wrote them: tests/test_json_sql.py fails when the schema (or the generator) would write
otherwise, which takes a new revision. They live in IMMUTABLE functions because a generated
column takes only immutable expressions; these are (to_char with a format of digits, UTC, no
session setting read), PostgreSQL cannot prove it of `to_char` and `to_json` in general.

Adding the columns rewrites both tables under an exclusive lock: about 1.6 s for 135,000
encounters. SQLite has neither column: it keeps the app's own encoder (service/encounters.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# service.encounters.stored_members_sql("encounters") and ("centers"), over the functions'
# arguments (laid out on lines here: tests/test_json_sql.py compares them whitespace aside).
_FORMATS = {
    "second": "'YYYY-MM-DD\"T\"HH24:MI:SS'",
    "microsecond": "'YYYY-MM-DD\"T\"HH24:MI:SS.US'",
}
_TIME = """coalesce(('"' || CASE WHEN date_trunc('second', {t}) = ({t})
        THEN to_char((({t}) AT TIME ZONE 'UTC'), {second})
        ELSE to_char((({t}) AT TIME ZONE 'UTC'), {microsecond}) END || '+00:00"'), 'null')"""
ENCOUNTER_MEMBERS = f"""('"UnitNumber":' || coalesce((unit_number)::bigint::text, 'null')
    || ',' || '"Id":' || coalesce(('"' || (id)::text || '"'), 'null')
    || ',' || '"DateTime":' || {_TIME.format(t="starts_at", **_FORMATS)}
    || ',' || '"EndDate":' || {_TIME.format(t="ends_at", **_FORMATS)}
    || ',' || '"Duration":'
    || coalesce((floor(extract(epoch FROM ends_at - starts_at) / 60))::bigint::text, 'null'))"""
CENTER_MEMBERS = """('"CenterId":' || coalesce(('"' || (id)::text || '"'), 'null')
    || ',' || '"CenterName":' || coalesce(to_json((name)::text)::text, 'null')
    || ',' || '"CenterReferenceId":' || coalesce(to_json((reference_id)::text)::text, 'null'))"""
_FUNCTIONS = {
    "encounter_json_members": (
        "unit_number integer, id uuid, starts_at timestamptz, ends_at timestamptz",
        ENCOUNTER_MEMBERS,
    ),
    "center_json_members": ("id uuid, name text, reference_id text", CENTER_MEMBERS),
}
_COLUMNS = {
    "encounters": "encounter_json_members(unit_number, id, starts_at, ends_at)",
    "centers": "center_json_members(id, name, reference_id)",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (arguments, members) in _FUNCTIONS.items():
        op.execute(
            f"CREATE FUNCTION {name}({arguments}) RETURNS text"
            f" LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN {members}"
        )
    for table, expression in _COLUMNS.items():
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN json_members text NOT NULL"
            f" GENERATED ALWAYS AS ({expression}) STORED"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _COLUMNS:
        op.execute(f"ALTER TABLE {table} DROP COLUMN json_members")
    for name, (arguments, _) in _FUNCTIONS.items():
        op.execute(f"DROP FUNCTION {name}({arguments})")
