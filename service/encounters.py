"""Which encounters a user may book or see, and their status (README: "The endpoint")."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    literal,
    literal_column,
    not_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement, Label

from schemas.encounters import EncounterSchema
from service.db import db
from service.directory import DirectoryUser, Role
from service.json_sql import json_array_sql, row_json_sql
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
# Whole minutes from start to end, rounded down as `AvailableEncounter.duration` does.
_DURATION_SQL = "floor(extract(epoch FROM q.ends_at - q.starts_at) / 60)"


def _query(
    target: DirectoryUser, window: Window, unit: int | None, online: bool | None
) -> tuple[_Shape, dict[str, object]] | None:
    """The list statement's shape and parameters; None when the list is empty by definition."""
    staff = target.role is Role.STAFF_MEMBER
    if not staff:
        unit = unit or target.current_unit
        if unit is None:
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


@functools.cache
def _statement(shape: _Shape) -> Select:
    """Built once per shape: SQLAlchemy then reuses its compiled form and cache key."""
    branches = [_select(scope) for scope in _scopes(shape)]
    if len(branches) == 1:
        return branches[0].order_by(Encounter.starts_at, Encounter.id)
    # Each branch is its own index range scan; an OR across them would scan the whole unit.
    union = union_all(*branches).subquery()
    return select(union).order_by(union.c.starts_at, union.c.id)


@functools.cache
def _json_statement(shape: _Shape) -> Select:
    """The list statement's rows as the answer's JSON array: one row, one text value."""
    rows = _statement(shape).order_by(None).subquery("q")
    columns = {name: f"q.{name}" for name in AvailableEncounter._fields}
    row = row_json_sql(EncounterSchema, {**columns, "duration": _DURATION_SQL})
    body: Label[str] = literal_column(json_array_sql(row, "q.starts_at, q.id")).label("body")
    return select(body).select_from(rows)


def _select(scope: ColumnElement[bool]) -> Select:
    return (
        select(
            Encounter.unit_number,
            Encounter.id,
            Encounter.starts_at,
            Encounter.ends_at,
            _status(),
            Encounter.is_online,
            Center.id.label("center_id"),
            Center.name.label("center_name"),
            Center.reference_id.label("center_reference_id"),
        )
        .join(Center, Center.id == Encounter.center_id)
        .where(
            scope,
            not_(Encounter.cancelled),
            Encounter.starts_at >= bindparam("starts"),
            Encounter.starts_at < bindparam("ends"),
        )
    )


def _scopes(shape: _Shape) -> list[ColumnElement[bool]]:
    """Disjoint conditions, one per index range scan, whose union is the target's encounters."""
    # The bare column (not `IS true`) so the planner matches the partial index on it.
    only_online: ColumnElement[bool] = Encounter.is_online.expression
    in_center_only = not_(only_online)
    in_centers = Encounter.center_id.in_(bindparam("centers", expanding=True))
    of_unit = Encounter.unit_number == bindparam("unit")
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


def _status() -> Label[str]:
    """Booked, Full or Available, from the row itself and the target's own active bookings.

    `active_bookings` is kept by triggers (migration 0003); the target's bookings are read once
    per statement (a hashed subplan), not probed once per row.
    """
    mine = select(Booking.encounter_id).where(
        Booking.user_id == bindparam("user_id"), not_(Booking.cancelled)
    )
    return case(
        (Encounter.id.in_(mine), literal("Booked")),
        (Encounter.active_bookings >= Encounter.capacity, literal("Full")),
        else_=literal("Available"),
    ).label("status")
