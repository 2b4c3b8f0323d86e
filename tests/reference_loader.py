"""The oracle: how load-data wrote a valid document before it streamed (commit 0cac966).

The whole document parsed, checked by the document schema, then upserted with executemany, row
by row; a test compares the streaming loader's tables with this one's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from schemas.imports import ImportDocumentSchema
from service.models import Base, StaffAssignment, User, lookup_key

TABLES: dict[str, Table] = dict(Base.metadata.tables)
PARKED = "\x1f"
CHUNK = 900


def reference_load(engine: Engine, text: str) -> None:
    """Write the valid document `text` as load-data did at commit 0cac966."""
    records = ImportDocumentSchema().load(json.loads(text))
    users = [
        {
            "id": user["id"],
            "email": user["email"],
            "email_key": lookup_key(user["email"]),
            "reference_id": user["reference_id"],
            "reference_key": lookup_key(user["reference_id"]),
            "role": user["role"],
            "center_id": user.get("center_id"),
            "current_unit": user.get("current_unit"),
        }
        for user in records["users"]
    ]
    assignments = [
        {"user_id": user["id"], "center_id": center_id}
        for user in records["users"]
        for center_id in user.get("center_ids") or ()
    ]
    with engine.begin() as connection:
        _upsert(connection, TABLES["centers"], records["centers"], ["id"])
        _park_changed_keys(connection, users)
        _upsert(connection, TABLES["users"], users, ["id"])
        for chunk in _chunks([user["id"] for user in users]):
            connection.execute(delete(StaffAssignment).where(StaffAssignment.user_id.in_(chunk)))
        if assignments:
            connection.execute(TABLES["staff_centers"].insert(), assignments)
        _upsert(connection, TABLES["encounters"], records["encounters"], ["id"])
        _upsert(connection, TABLES["bookings"], records["bookings"], ["encounter_id", "user_id"])


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    listed = list(items)
    for start in range(0, len(listed), CHUNK):
        yield listed[start : start + CHUNK]


def _upsert(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    if not rows:
        return
    dialect = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[connection.dialect.name]
    insert = dialect(table)
    carried = set().union(*(row.keys() for row in rows))
    changing = {
        column.name: insert.excluded[column.name]
        for column in table.columns
        if column.name not in keys and column.name in carried
    }
    statement = insert.on_conflict_do_update(index_elements=list(keys), set_=changing)
    connection.execute(statement, list(rows))


def _park_changed_keys(connection: Connection, users: list[dict[str, Any]]) -> None:
    wanted = {user["id"]: (user["email_key"], user["reference_key"]) for user in users}
    changed: list[uuid.UUID] = []
    for chunk in _chunks(wanted):
        rows = connection.execute(
            select(User.id, User.email_key, User.reference_key).where(User.id.in_(chunk))
        )
        changed += [row.id for row in rows if (row.email_key, row.reference_key) != wanted[row.id]]
    if changed:
        table = TABLES["users"]
        statement = (
            table.update()
            .where(table.c.id == bindparam("parked_id"))
            .values(
                email_key=bindparam("parked_email"), reference_key=bindparam("parked_reference")
            )
        )
        parked = [{"parked_id": i, "parked_email": PARKED + i.hex, "parked_reference": PARKED + i.hex}
                  for i in changed]  # fmt: skip
        connection.execute(statement, parked)
