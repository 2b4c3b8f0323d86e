"""Which encounters a user may book or see, and their status (README: "The endpoint")."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Select,
    String,
    and_,
    bindparam,
    case,
    literal_column,
    not_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement, Label

from schemas.encounters import EncounterSchema
from service.db import db
from service.directory import DirectoryUser, Role
from service.json_sql import Run, json_array_sql, members_sql, row_json_sql
from service.models import Booking, Center, Encounter
from service.representations import compile_json


class InvalidQuery(ValueError):
    """Query arguments that parse but do not make a window; `errors` maps field to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid query arguments")
        self.errors = errors


@dataclass(frozen=True)
class Window:
    """Encounters that start in [starts, ends)."""

    starts: datetime
    ends: datetime

    @classmethod
    def of(
        cls,
        starts: datetime | None,
        ends: datetime | None,
        *,
        default_days: int,
        max_days: int,
    ) -> Window:
        """The window the query asks for, with the configured default length and limit."""
        starts = starts or datetime.now(UTC)
        try:
            ends = ends or starts + timedelta(days=default_days)
        except OverflowError:
            raise InvalidQuery({"from": ["Too far in the future."]}) from None
        if starts >= ends:
            raise InvalidQuery({"to": ["Must be after 'from'."]})
        if ends - starts > timedelta(days=max_days):
            raise InvalidQuery({"to": [f"The window may span at most {max_days} days."]})
        return cls(starts, ends)


class ListQuery(NamedTuple):
    """What a request asks of its list besides whose it is."""

    window: Window
    unit: int | None = None
    online: bool | None = None


class AvailableEncounter(NamedTuple):
    """One row of the answer, as the list statement selects it (a tuple: no object per row)."""

    unit_number: int
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    status: str
    is_online: bool
    center_id: uuid.UUID
    center_name: str
    center_reference_id: str

    @property
    def duration(self) -> int:
        """Whole minutes from start to end (integer arithmetic: exact at any length)."""
        return (self.ends_at - self.starts_at) // _MINUTE


_MINUTE = timedelta(minutes=1)


def available_encounters(
    target: DirectoryUser, window: Window, unit: int | None = None, online: bool | None = None
) -> list[AvailableEncounter]:
    """The target's encounters in the window, in one SQL statement whatever their number."""
    query = _query(target, window, unit, online)
    if query is None:
        return []
    shape, parameters = query
    # all(): one fetchall, not a fetchone per row.
    return list(map(AvailableEncounter._make, db.read(_statement(shape), parameters)))


def encounters_json(
    target: DirectoryUser, window: Window, unit: int | None = None, online: bool | None = None
) -> bytes:
    """The answer's body: the JSON of `EncounterSchema(many=True).dump(available_encounters)`.

    On PostgreSQL the database writes it (service.json_sql: the same bytes, one text value
    instead of a row of nine values per encounter for the driver to decode and Python to
    encode); elsewhere the compiled dump writes it.
    """
    query = _query(target, window, unit, online)
    if query is None:
        return _to_json([])
    shape, parameters = query
    if db.connection.dialect.name != "postgresql":
        return _to_json(map(AvailableEncounter._make, db.read(_statement(shape), parameters)))
    body: str = db.read(_json_statement(shape), parameters)[0][0]
    return body.encode()


# EncounterSchema's own output, without marshmallow's per-field work for every encounter.
_to_json = compile_json(EncounterSchema, AvailableEncounter)


def duration_sql(starts_at: str, ends_at: str) -> str:
    """Whole minutes from start to end, rounded down as `AvailableEncounter.duration` does."""
    return f"floor(extract(epoch FROM {ends_at} - {starts_at}) / 60)"


# The answer's members each table stores, written when its row is (migration 0005: a generated
# column `json_members`, PostgreSQL only): the encounter's fields before its status, and the
# center's. A request's statement writes only the members that depend on it (the status, and
# `IsOnline` between the two runs) and joins the stored ones, the center's from the copy each
# encounter holds (migration 0006). The SQL of each attribute is over the table's own columns.
# tests/test_json_sql.py holds migration 0005 to what this generates.
STORED_MEMBERS: dict[str, tuple[Run, dict[str, str]]] = {
    "encounters": (
        ("unit_number", "id", "starts_at", "ends_at", "duration"),
        {
            "unit_number": "unit_number",
            "id": "id",
            "starts_at": "starts_at",
            "ends_at": "ends_at",
            "duration": duration_sql("starts_at", "ends_at"),
        },
    ),
    "centers": (
        ("center_id", "center_name", "center_reference_id"),
        {"center_id": "id", "center_name": "name", "center_reference_id": "reference_id"},
    ),
}


def stored_members_sql(table: str) -> str:
    """The SQL of the members `table`'s generated column `json_members` holds."""
    attributes, columns = STORED_MEMBERS[table]
    return members_sql(EncounterSchema, columns, attributes)


def _query(
    target: DirectoryUser, window: Window, unit: int | None, online: bool | None
) -> tuple[_Shape, dict[str, object]] | None:
    """The list statement's shape and parameters; None when the list is empty by definition."""
    staff = target.role is Role.STAFF_MEMBER
    if not staff:
        unit = unit or target.current_unit
        # No unit; or only in-center encounters asked of a student of no center.
        if unit is None or (online is False and not target.center_ids):
            return None
    elif not target.center_ids:
        return None
    shape = _Shape(staff, bool(target.center_ids), unit is not None, online)
    parameters = {
        "user_id": target.id,
        "centers": sorted(target.center_ids),
        "unit": unit,
        "starts": window.starts,
        "ends": window.ends,
    }
    return shape, parameters


@dataclass(frozen=True)
class _Shape:
    """What decides the statement's text; everything else is a bound parameter."""

    staff: bool
    has_centers: bool
    has_unit: bool
    online: bool | None


class Target(NamedTuple):
    """The target's values as a list statement reads them.

    Bound parameters (`BOUND`), or, when the directory's lookup and the list are one statement
    (`service.resolvers`), SQL over the lookup's rows. `student` is a condition every branch
    also meets: None, or a test that the target is a student (false: the list is empty).
    """

    user_id: ColumnElement[Any]
    unit: ColumnElement[Any]
    in_centers: ColumnElement[bool]
    student: ColumnElement[bool] | None = None


BOUND = Target(
    bindparam("user_id"),
    bindparam("unit"),
    Encounter.center_id.in_(bindparam("centers", expanding=True)),
)


def student_list_json(online: bool | None, target: Target) -> Select:
    """A student's list as its JSON text (one row, `body`), the target's values from `target`.

    The student's shape with a unit and centers: a target with no unit or no center has SQL
    NULLs or an empty array there, which match no row, as `_query` finds no row for them.
    """
    return _json_statement(_Shape(False, True, True, online), target)


@functools.cache
def _statement(shape: _Shape) -> Select:
    """Built once per shape: SQLAlchemy then reuses its compiled form and cache key."""
    branches = [_select(scope) for scope in _scopes(shape, BOUND)]
    if len(branches) == 1:
        return branches[0].order_by(Encounter.starts_at, Encounter.id)
    # Each branch is its own index range scan; an OR across them would scan the whole unit.
    union = union_all(*branches).subquery()
    return select(union).order_by(union.c.starts_at, union.c.id)


@functools.cache
def _json_statement(shape: _Shape, target: Target = BOUND) -> Select:
    """The list statement as the answer's JSON array: one row, one text value.

    Each row is the encounter's and its center's stored members around the status and
    `IsOnline`: PostgreSQL concatenates, it does not format (migration 0005).
    """
    branches = [_select(scope, target, stored=True) for scope in _scopes(shape, target)]
    rows = (branches[0] if len(branches) == 1 else union_all(*branches)).subquery("q")
    stored = {STORED_MEMBERS[table][0]: f"q.{table}_json" for table in STORED_MEMBERS}
    columns = {name: f"q.{name}" for name in ("status", "is_online")}
    row = row_json_sql(EncounterSchema, columns, stored)
    body: Label[str] = literal_column(json_array_sql(row, "q.starts_at, q.id")).label("body")
    return select(body).select_from(rows)


def _select(scope: ColumnElement[bool], target: Target = BOUND, stored: bool = False) -> Select:
    """One branch's rows: the answer's columns, or (`stored`) what the JSON statement needs.

    The stored members are the encounter's and its center's, both read from the encounter row
    (migration 0006 keeps a copy of the center's there): no center row is read.
    """
    if stored:
        # Not in the models: PostgreSQL alone has them (migrations 0005 and 0006), and only
        # this reads them.
        columns: tuple[Any, ...] = (
            Encounter.id,
            Encounter.starts_at,
            _status(target.user_id),
            Encounter.is_online,
            literal_column("encounters.json_members").label("encounters_json"),
            literal_column("encounters.center_json_members").label("centers_json"),
        )
    else:
        columns = (
            Encounter.unit_number,
            Encounter.id,
            Encounter.starts_at,
            Encounter.ends_at,
            _status(target.user_id),
            Encounter.is_online,
            Center.id.label("center_id"),
            Center.name.label("center_name"),
            Center.reference_id.label("center_reference_id"),
        )
    rows = select(*columns)
    if not stored:
        rows = rows.join(Center, Center.id == Encounter.center_id)
    return rows.where(
        scope,
        not_(Encounter.cancelled),
        Encounter.starts_at >= bindparam("starts"),
        Encounter.starts_at < bindparam("ends"),
    )


def _scopes(shape: _Shape, target: Target) -> list[ColumnElement[bool]]:
    """Disjoint conditions, one per index range scan, whose union is the target's encounters."""
    # The bare column (not `IS true`) so the planner matches the partial index on it.
    only_online: ColumnElement[bool] = Encounter.is_online.expression
    in_center_only = not_(only_online)
    in_centers = target.in_centers
    of_unit = Encounter.unit_number == target.unit
    if target.student is not None:
        # Not a column's condition: PostgreSQL tests it once, before the branch reads a row.
        of_unit = and_(target.student, of_unit)
    if shape.staff:
        scope = and_(of_unit, in_centers) if shape.has_unit else in_centers
        if shape.online is not None:
            scope = and_(scope, only_online if shape.online else in_center_only)
        return [scope]
    scopes = []
    if shape.online is not True and shape.has_centers:
        scopes.append(and_(of_unit, in_centers, in_center_only))
    if shape.online is not False:
        scopes.append(and_(of_unit, only_online))
    return scopes


def _status(user_id: ColumnElement[Any]) -> Label[str]:
    """Booked, Full or Available, from the row itself and the target's own active bookings.

    `active_bookings` is kept by triggers (migration 0003); the target's bookings are read once
    per statement (a hashed subplan: `user_id` is a parameter or an uncorrelated subquery),
    not probed once per row.
    """
    mine = select(Booking.encounter_id).where(Booking.user_id == user_id, not_(Booking.cancelled))
    # Literals in the SQL, not parameters: nothing for the driver to send per statement.
    return case(
        (Encounter.id.in_(mine), _text("Booked")),
        (Encounter.active_bookings >= Encounter.capacity, _text("Full")),
        else_=_text("Available"),
    ).label("status")


def _text(value: str) -> ColumnElement[str]:
    return literal_column(f"'{value}'", String)
