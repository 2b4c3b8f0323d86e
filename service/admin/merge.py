"""The write of load-data: the staging tables merged into the five tables, each row written once.

One statement a table (`INSERT … SELECT … ON CONFLICT DO UPDATE`, skipping rows that would not
change). The per-statement recount of `encounters.active_bookings` (migration 0003) is held off
for the load: an encounter's count is computed as it is written, and the encounters that only
gained or lost bookings are recounted once, at the end, and written only when the count moved.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, String, bindparam, text

# Control characters never pass the schema, so a parked key cannot collide with a real one.
PARKED = "\x1f"
# Read by the recount trigger (migration 0004): `on` holds it off in this transaction.
BULK_LOAD_SETTING = "encounters.bulk_load"
_ACTIVE_COUNT = (
    "(SELECT count(*) FROM bookings b WHERE b.encounter_id = {id} AND NOT b.cancelled{extra})"
)


def _upsert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    select: str,
    order_by: str = "",
) -> int:
    changing = [column for column in columns if column not in keys]
    differs = " OR ".join(
        f"{table}.{column} {_distinct(connection)} excluded.{column}" for column in changing
    )
    assignments = ", ".join(f"{column} = excluded.{column}" for column in changing)
    # `WHERE true` parts SQLite's ON CONFLICT from a join's ON.
    order = f" ORDER BY {order_by}" if order_by else ""
    statement = (
        f"INSERT INTO {table} ({', '.join(columns)}) {select} WHERE true{order}"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {assignments} WHERE {differs}"
    )
    return connection.execute(text(statement)).rowcount


def _distinct(connection: Connection) -> str:
    return "IS DISTINCT FROM" if connection.dialect.name == "postgresql" else "IS NOT"


def merge_centers(connection: Connection) -> None:
    """Insert or update the staged centers."""
    columns = ["id", "reference_id", "name"]
    _upsert(
        connection, "centers", columns, ["id"], f"SELECT {', '.join(columns)} FROM stage_centers"
    )


def merge_users(connection: Connection) -> None:
    """Insert or update the staged users, and make their staff assignments their CenterIds."""
    # A key another staged user takes is parked first, so that swaps never clash on the unique
    # indexes; only those users are written twice.
    connection.execute(
        text(
            "UPDATE users SET email_key = :parked || CAST(id AS TEXT),"
            " reference_key = :parked || CAST(id AS TEXT) WHERE EXISTS (SELECT 1 FROM stage_users s"
            " WHERE s.email_key = users.email_key AND s.id <> users.id) OR EXISTS (SELECT 1"
            " FROM stage_users s WHERE s.reference_key = users.reference_key AND s.id <> users.id)"
        ).bindparams(bindparam("parked", PARKED, type_=String))
    )
    columns = ["id", "email", "email_key", "reference_id", "reference_key", "role"]
    role = "CAST(role AS user_role)" if connection.dialect.name == "postgresql" else "role"
    selected = ", ".join(columns[:-1]) + f", {role}, center_id, current_unit"
    _upsert(
        connection,
        "users",
        [*columns, "center_id", "current_unit"],
        ["id"],
        f"SELECT {selected} FROM stage_users",
    )
    # A user in the document is stated whole: their assignments are exactly CenterIds.
    connection.execute(
        text(
            "DELETE FROM staff_centers WHERE user_id IN (SELECT id FROM stage_users) AND NOT EXISTS"
            " (SELECT 1 FROM stage_staff s WHERE s.user_id = staff_centers.user_id"
            " AND s.center_id = staff_centers.center_id)"
        )
    )
    connection.execute(
        text(
            "INSERT INTO staff_centers (user_id, center_id) SELECT user_id, center_id"
            " FROM stage_staff WHERE true ON CONFLICT DO NOTHING"
        )
    )


# New encounters are written in the order the list reads them (service/encounters.py): in-center
# ones by unit, center and start; online ones by unit and start, whatever their center. A list's
# rows then share a few pages instead of one page each (a load into an empty table: a 256-item
# list statement 833 -> 750 µs of PostgreSQL's CPU). Rows written later land wherever there is
# room, as after a CLUSTER.
ENCOUNTER_ORDER = (
    "s.is_online, s.unit_number, CASE WHEN s.is_online THEN NULL ELSE s.center_id END, s.starts_at"
)


def merge_encounters(connection: Connection) -> None:
    """Insert or update the staged encounters, each with its count of active bookings."""
    columns = ["id", "center_id", "unit_number", "starts_at", "ends_at", "is_online", "capacity"]
    # The count after the load: the staged active bookings, plus the stored active ones that
    # the document does not restate.
    unstated = _ACTIVE_COUNT.format(
        id="s.id",
        extra=" AND NOT EXISTS (SELECT 1 FROM stage_bookings t"
        " WHERE t.encounter_id = b.encounter_id AND t.user_id = b.user_id)",
    )
    select = (
        f"SELECT {', '.join('s.' + c for c in columns)}, s.cancelled,"
        f" COALESCE(n.active, 0) + {unstated} FROM stage_encounters s LEFT JOIN"
        " (SELECT encounter_id, count(*) AS active FROM stage_bookings WHERE NOT cancelled"
        " GROUP BY encounter_id) n ON n.encounter_id = s.id"
    )
    _upsert(
        connection,
        "encounters",
        [*columns, "cancelled", "active_bookings"],
        ["id"],
        select,
        order_by=ENCOUNTER_ORDER,
    )


def merge_bookings(connection: Connection) -> None:
    """Insert or update the staged bookings (the recount held off: `recount` follows)."""
    columns = ["encounter_id", "user_id", "cancelled"]
    _upsert(
        connection,
        "bookings",
        columns,
        ["encounter_id", "user_id"],
        f"SELECT {', '.join(columns)} FROM stage_bookings",
    )


def recount(connection: Connection) -> int:
    """Recount the encounters the staged bookings touch; write only those whose count moved."""
    count = _ACTIVE_COUNT.format(id="encounters.id", extra="")
    return connection.execute(
        text(
            f"UPDATE encounters SET active_bookings = {count}"
            " WHERE id IN (SELECT encounter_id FROM stage_bookings)"
            f" AND active_bookings <> {count}"
        )
    ).rowcount


@contextmanager
def recount_held_off(connection: Connection) -> Iterator[None]:
    """Hold off the per-statement recount trigger for this transaction's writes."""
    if connection.dialect.name == "postgresql":
        # Transaction-local: other sessions' statements keep their trigger. They wait for this
        # load to commit (reads do not): a booking written meanwhile would be counted from a
        # snapshot without the load's bookings, and the load's recount would not see it.
        connection.execute(text("LOCK TABLE bookings IN SHARE ROW EXCLUSIVE MODE"))
        connection.execute(text(f"SELECT set_config('{BULK_LOAD_SETTING}', 'on', true)"))
        yield
        connection.execute(text(f"SELECT set_config('{BULK_LOAD_SETTING}', 'off', true)"))
        return
    # SQLite: one writer at a time, and DDL is transactional. The triggers are dropped and made
    # again from their own text, inside this transaction: a failure restores them with the rest.
    triggers = connection.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'bookings'"
            " AND name IN ('bookings_inserted', 'bookings_updated', 'bookings_deleted')"
        )
    ).all()
    for name, _sql in triggers:
        connection.execute(text(f"DROP TRIGGER {name}"))
    yield
    for _name, sql in triggers:
        connection.execute(text(sql))


def analyze(connection: Connection, tables: Sequence[str]) -> None:
    """Gather the planner's statistics for `tables` (SQLite: sqlite_stat1)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ANALYZE {', '.join(tables)}"))
        return
    connection.execute(text("PRAGMA analysis_limit = 1000"))
    for table in tables:
        connection.execute(text(f"ANALYZE main.{table}"))
