"""A fast path for the schema stage: the common, valid record checked without marshmallow.

marshmallow costs 10-25 µs a record, most of a large load's client time. These checks accept
only records that the import schemas accept too, and return what they return; anything else
(an error, or a valid but unusual spelling) returns None and goes to marshmallow, which names
the problem. tests/test_fast_records.py holds the two to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from service.directory import Role
from service.identifiers import is_email
from service.models import INT32_MAX

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[+-]\d\d:\d\d|Z)")
_CENTER_KEYS = frozenset({"Id", "ReferenceId", "Name"})
_STUDENT_KEYS = frozenset({"Id", "ReferenceId", "Email", "Role", "CenterId", "CurrentUnit"})
_STAFF_KEYS = frozenset({"Id", "ReferenceId", "Email", "Role", "CenterIds"})
_ENCOUNTER_KEYS = frozenset(
    {"Id", "CenterId", "UnitNumber", "DateTime", "EndDate", "IsOnline", "Capacity", "Cancelled"}
)
_BOOKING_KEYS = frozenset({"EncounterId", "UserId", "Cancelled"})


class _Refused(Exception):
    pass


def _guid(value: Any) -> str:
    # Kept as text: the database reads the D form itself (uuid.UUID() would cost 5 µs a GUID).
    if type(value) is not str or not _GUID.fullmatch(value):
        raise _Refused
    return value


def _text(value: Any) -> str:
    if type(value) is not str or not 1 <= len(value) <= 254:
        raise _Refused
    if not value.isprintable() or value != value.strip():
        raise _Refused
    return value


def _whole(value: Any, minimum: int) -> int:
    if type(value) is not int or not minimum <= value <= INT32_MAX:
        raise _Refused
    return value


def _boolean(value: Any) -> bool:
    if value is not True and value is not False:
        raise _Refused
    return value


def _moment(value: Any) -> datetime:
    if type(value) is not str or not _MOMENT.fullmatch(value):
        raise _Refused
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Refused from None


def _center(raw: dict[str, Any]) -> dict[str, Any]:
    if raw.keys() != _CENTER_KEYS:
        raise _Refused
    return {
        "id": _guid(raw["Id"]),
        "reference_id": _text(raw["ReferenceId"]),
        "name": _text(raw["Name"]),
    }


def _user(raw: dict[str, Any]) -> dict[str, Any]:
    email = _text(raw.get("Email"))
    if not is_email(email):
        raise _Refused
    record: dict[str, Any] = {
        "id": _guid(raw.get("Id")),
        "reference_id": _text(raw.get("ReferenceId")),
        "email": email,
    }
    if raw.get("Role") == "Student" and raw.keys() <= _STUDENT_KEYS:
        record["role"] = Role.STUDENT
        record["center_id"] = _guid(raw.get("CenterId"))
        if "CurrentUnit" in raw:
            unit = raw["CurrentUnit"]
            record["current_unit"] = None if unit is None else _whole(unit, 1)
    elif raw.get("Role") == "StaffMember" and raw.keys() <= _STAFF_KEYS:
        record["role"] = Role.STAFF_MEMBER
        centers = raw.get("CenterIds")
        if type(centers) is not list:
            raise _Refused
        record["center_ids"] = [_guid(center) for center in centers]
        if len({center.lower() for center in record["center_ids"]}) != len(centers):
            raise _Refused
    else:
        raise _Refused
    return record


def _encounter(raw: dict[str, Any]) -> dict[str, Any]:
    if not raw.keys() <= _ENCOUNTER_KEYS:
        raise _Refused
    record: dict[str, Any] = {
        "id": _guid(raw.get("Id")),
        "center_id": _guid(raw.get("CenterId")),
        "unit_number": _whole(raw.get("UnitNumber"), 1),
        "starts_at": _moment(raw.get("DateTime")),
        "ends_at": _moment(raw.get("EndDate")),
        "is_online": _boolean(raw.get("IsOnline")),
        "capacity": _whole(raw.get("Capacity"), 0),
        "cancelled": _boolean(raw.get("Cancelled", False)),
    }
    if record["ends_at"] <= record["starts_at"]:
        raise _Refused
    return record


def _booking(raw: dict[str, Any]) -> dict[str, Any]:
    if not raw.keys() <= _BOOKING_KEYS:
        raise _Refused
    return {
        "encounter_id": _guid(raw.get("EncounterId")),
        "user_id": _guid(raw.get("UserId")),
        "cancelled": _boolean(raw.get("Cancelled", False)),
    }


_CHECKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "centers": _center,
    "users": _user,
    "encounters": _encounter,
    "bookings": _booking,
}


def fast_record(kind: str, raw: Any) -> dict[str, Any] | None:
    """The record as the schema of `kind` loads it (GUIDs as text); None: ask that schema."""
    if type(raw) is not dict:
        return None
    try:
        return _CHECKS[kind](raw)
    except _Refused:
        return None
