"""load-data: check a whole import document first, then write it in one transaction, or nothing.

Checking happens in two stages. The schema stage names every record that breaks the wire format
(types, required keys, ranges). Only a document that passes it reaches the consistency stage:
duplicates inside the document, references to centers, encounters and users that exist neither in
the document nor in the database, and emails or reference ids another user already holds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection, Engine, Table, bindparam, delete, select
from sqlalchemy.exc import DBAPIError

from schemas.imports import ImportDocumentSchema
from service.admin.bulk import LOOKUP_CHUNK, batches, insert_rows, upsert_rows
from service.admin.import_checks import consistency_errors, record_label
from service.models import Base, StaffAssignment, User, lookup_key
from service.problems import flatten_messages

LISTS = ("centers", "users", "encounters", "bookings")
MAX_LISTED = 20
# Control characters never pass the schema, so a parked key cannot collide with a real one.
PARKED = "\x1f"
TABLES: dict[str, Table] = dict(Base.metadata.tables)
_SCHEMA = ImportDocumentSchema()


class ImportRejected(ValueError):
    """Nothing was written; `errors` says why, naming each bad record."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)

    def __str__(self) -> str:
        count = len(self.errors)
        lines = [f"nothing was written; {count} problem{'' if count == 1 else 's'}:"]
        lines += [f"  {error}" for error in self.errors[:MAX_LISTED]]
        if count > MAX_LISTED:
            lines.append(f"  and {count - MAX_LISTED} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class LoadSummary:
    """How many records of each kind were inserted or updated."""

    centers: int
    users: int
    staff_assignments: int
    encounters: int
    bookings: int

    def __str__(self) -> str:
        return (
            f"loaded (inserted or updated) {self.centers:,} centers, {self.users:,} users "
            f"({self.staff_assignments:,} staff assignments), {self.encounters:,} encounters "
            f"and {self.bookings:,} bookings"
        )


class _NotStrictJson(ValueError):
    pass


def parse_document(text: bytes | str) -> Any:
    """The document's JSON, parsed strictly: duplicate keys, NaN and Infinity are errors."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ImportRejected(["the document is not UTF-8 text"]) from None
    except json.JSONDecodeError as error:
        raise ImportRejected(
            [f"the document is not JSON: {error.msg} (line {error.lineno}, column {error.colno})"]
        ) from None
    except _NotStrictJson as error:
        raise ImportRejected([f"the document is not JSON: {error}"]) from None


def load_document(engine: Engine, document: Any) -> LoadSummary:
    """Check `document` completely, then upsert it in one transaction; ImportRejected if not."""
    records = checked_records(document)
    try:
        with engine.begin() as connection:
            errors = consistency_errors(connection, records, document)
            if errors:
                raise ImportRejected(errors)
            return _write(connection, records)
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise ImportRejected([f"the database failed, so everything was undone: {reason}"]) from None


def checked_records(document: Any) -> dict[str, list[dict[str, Any]]]:
    """The document's records, typed; ImportRejected naming every record the schema refuses."""
    if not isinstance(document, dict):
        kind = "an array" if isinstance(document, list) else "a single value"
        raise ImportRejected(
            [f"the document must be a JSON object with the lists {', '.join(LISTS)}, not {kind}"]
        )
    try:
        records: dict[str, list[dict[str, Any]]] = _SCHEMA.load(document)
    except ValidationError as error:
        raise ImportRejected(_schema_errors(error.messages_dict, document)) from None
    return records


def _write(connection: Connection, records: dict[str, list[dict[str, Any]]]) -> LoadSummary:
    users = [_user_row(user) for user in records["users"]]
    assignments = [
        {"user_id": user["id"], "center_id": center_id}
        for user in records["users"]
        for center_id in user.get("center_ids") or ()
    ]
    upsert_rows(connection, TABLES["centers"], records["centers"], ["id"])
    _park_changed_keys(connection, users)
    upsert_rows(connection, TABLES["users"], users, ["id"])
    # A user in the document is stated whole: their assignments are exactly CenterIds.
    for chunk in batches([user["id"] for user in users], LOOKUP_CHUNK):
        connection.execute(delete(StaffAssignment).where(StaffAssignment.user_id.in_(chunk)))
    insert_rows(connection, TABLES["staff_centers"], assignments)
    upsert_rows(connection, TABLES["encounters"], records["encounters"], ["id"])
    upsert_rows(connection, TABLES["bookings"], records["bookings"], ["encounter_id", "user_id"])
    return LoadSummary(
        centers=len(records["centers"]),
        users=len(users),
        staff_assignments=len(assignments),
        encounters=len(records["encounters"]),
        bookings=len(records["bookings"]),
    )


def _user_row(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "email": user["email"],
        "email_key": lookup_key(user["email"]),
        "reference_id": user["reference_id"],
        "reference_key": lookup_key(user["reference_id"]),
        "role": user["role"],
        "center_id": user.get("center_id"),
        "current_unit": user.get("current_unit"),
    }


def _park_changed_keys(connection: Connection, users: list[dict[str, Any]]) -> None:
    """Free the keys of users whose email or reference id changes, so that swaps cannot collide."""
    wanted = {user["id"]: (user["email_key"], user["reference_key"]) for user in users}
    changed: list[uuid.UUID] = []
    for chunk in batches(wanted, LOOKUP_CHUNK):
        rows = connection.execute(
            select(User.id, User.email_key, User.reference_key).where(User.id.in_(chunk))
        )
        changed += [row.id for row in rows if (row.email_key, row.reference_key) != wanted[row.id]]
    if not changed:
        return
    table = TABLES["users"]
    statement = (
        table.update()
        .where(table.c.id == bindparam("parked_id"))
        .values(email_key=bindparam("parked_email"), reference_key=bindparam("parked_reference"))
    )
    parked = [
        {"parked_id": id_, "parked_email": PARKED + id_.hex, "parked_reference": PARKED + id_.hex}
        for id_ in changed
    ]
    for batch in batches(parked, LOOKUP_CHUNK):
        connection.execute(statement, batch)


def _schema_errors(messages: dict[str, Any], document: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for name, problem in messages.items():
        if name in LISTS and isinstance(problem, dict):
            for index in sorted(problem):
                label = record_label(name, index, document[name][index])
                errors += [f"{label}: {text}" for text in _lines(problem[index])]
        else:
            errors += [f"{name}: {text}" for text in _lines(problem)]
    return errors


def _lines(messages: Any) -> list[str]:
    """marshmallow's nested messages as `Key[index]: message` lines."""
    return [f"{path}: {text}" if path else text for path, text in flatten_messages(messages)]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of repeated keys silently; an import must not guess which was meant.
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _NotStrictJson(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return mapping


def _no_constant(name: str) -> None:
    raise _NotStrictJson(f"{name} is not a JSON number")
