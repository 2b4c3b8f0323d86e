"""The consistency stage of load-data: duplicates, dangling references and key clashes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import InstrumentedAttribute

from service.admin.bulk import LOOKUP_CHUNK, batches
from service.models import Center, Encounter, User, lookup_key

ORDER = ("centers", "users", "encounters", "bookings")
MISSING = "No {} with this Id in the document or the database."
Records = dict[str, list[dict[str, Any]]]


def record_label(kind: str, index: int, raw: Any) -> str:
    """How an error names a record: `users[17] (Id 9f…)`; a booking by EncounterId and UserId."""
    keys = ("EncounterId", "UserId") if kind == "bookings" else ("Id",)
    shown = [f"{key} {_shown(raw[key])}" for key in keys if isinstance(raw, dict) and key in raw]
    return f"{kind}[{index}] ({', '.join(shown)})" if shown else f"{kind}[{index}]"


def consistency_errors(connection: Connection, records: Records, document: Any) -> list[str]:
    """Every duplicate, dangling reference and key clash in `records`, in document order."""
    report = _Report(document)
    _duplicates(report, records)
    _references(connection, report, records)
    _key_clashes(connection, report, records["users"])
    return report.lines()


class _Report:
    def __init__(self, document: Any) -> None:
        self.document = document
        self.found: list[tuple[int, int, int, str]] = []

    def add(self, kind: str, index: int, text: str) -> None:
        label = record_label(kind, index, self.document[kind][index])
        self.found.append((ORDER.index(kind), index, len(self.found), f"{label}: {text}"))

    def lines(self) -> list[str]:
        return [line for *_position, line in sorted(self.found)]


def _duplicates(report: _Report, records: Records) -> None:
    checks: list[tuple[str, Callable[[dict[str, Any]], Hashable], str]] = [
        ("centers", lambda r: r["id"], "Id: Same Id as centers[{}]."),
        ("users", lambda r: r["id"], "Id: Same Id as users[{}]."),
        ("users", lambda r: lookup_key(r["email"]), "Email: Same as users[{}] (ignoring case)."),
        (
            "users",
            lambda r: lookup_key(r["reference_id"]),
            "ReferenceId: Same as users[{}] (ignoring case).",
        ),
        ("encounters", lambda r: r["id"], "Id: Same Id as encounters[{}]."),
        (
            "bookings",
            lambda r: (r["encounter_id"], r["user_id"]),
            "Same EncounterId and UserId as bookings[{}].",
        ),
    ]
    for kind, key, message in checks:
        first: dict[Hashable, int] = {}
        for index, record in enumerate(records[kind]):
            earlier = first.setdefault(key(record), index)
            if earlier != index:
                report.add(kind, index, message.format(earlier))


def _references(connection: Connection, report: _Report, records: Records) -> None:
    users, encounters, bookings = records["users"], records["encounters"], records["bookings"]
    wanted = {e["center_id"] for e in encounters}
    for user in users:
        wanted.update(user.get("center_ids") or ())
        if user.get("center_id") is not None:
            wanted.add(user["center_id"])
    centers = _existing(connection, Center.id, {c["id"] for c in records["centers"]}, wanted)
    for index, user in enumerate(users):
        if user.get("center_id") is not None and user["center_id"] not in centers:
            report.add("users", index, "CenterId: " + MISSING.format("center"))
        for position, center_id in enumerate(user.get("center_ids") or ()):
            if center_id not in centers:
                report.add("users", index, f"CenterIds[{position}]: " + MISSING.format("center"))
    for index, encounter in enumerate(encounters):
        if encounter["center_id"] not in centers:
            report.add("encounters", index, "CenterId: " + MISSING.format("center"))

    known_encounters = _existing(
        connection,
        Encounter.id,
        {e["id"] for e in encounters},
        {b["encounter_id"] for b in bookings},
    )
    known_users = _existing(
        connection, User.id, {u["id"] for u in users}, {b["user_id"] for b in bookings}
    )
    for index, booking in enumerate(bookings):
        if booking["encounter_id"] not in known_encounters:
            report.add("bookings", index, "EncounterId: " + MISSING.format("encounter"))
        if booking["user_id"] not in known_users:
            report.add("bookings", index, "UserId: " + MISSING.format("user"))


def _existing(
    connection: Connection,
    column: InstrumentedAttribute[uuid.UUID],
    in_document: set[uuid.UUID],
    wanted: set[uuid.UUID],
) -> set[uuid.UUID]:
    """The ids of the document, plus those of `wanted` the database holds."""
    known = set(in_document)
    for chunk in batches(wanted - in_document, LOOKUP_CHUNK):
        known.update(connection.scalars(select(column).where(column.in_(chunk))))
    return known


def _key_clashes(connection: Connection, report: _Report, users: list[dict[str, Any]]) -> None:
    """Emails and reference ids that a user outside the document already holds."""
    in_document = {user["id"] for user in users}
    for column, field, name in (
        (User.email_key, "email", "Email"),
        (User.reference_key, "reference_id", "ReferenceId"),
    ):
        first: dict[str, int] = {}
        for index, user in enumerate(users):
            first.setdefault(lookup_key(user[field]), index)
        for chunk in batches(first, LOOKUP_CHUNK):
            for key, owner in connection.execute(select(column, User.id).where(column.in_(chunk))):
                # An owner in the document gives its key up (or is reported as a duplicate).
                if owner not in in_document:
                    report.add(
                        "users", first[key], f"{name}: Already used by another user (Id {owner})."
                    )


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) and value.isprintable() else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
