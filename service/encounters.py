"""Which encounters a user may book or see, and their status (SPEC 5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from service.db import db
from service.models import Booking, Center, Encounter, Role
from service.resolvers import DirectoryUser


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
        now: datetime | None = None,
    ) -> Window:
        """The window the query asks for, with SPEC 2.3's defaults and limits."""
        starts = starts or now or datetime.now(UTC)
        try:
            ends = ends or starts + timedelta(days=default_days)
        except OverflowError:
            raise InvalidQuery({"from": ["Too far in the future."]}) from None
        if starts >= ends:
            raise InvalidQuery({"to": ["Must be after 'from'."]})
        if ends - starts > timedelta(days=max_days):
            raise InvalidQuery({"to": [f"The window may span at most {max_days} days."]})
        return cls(starts, ends)


@dataclass(frozen=True)
class AvailableEncounter:
    """One row of the answer."""

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
        """Whole minutes from start to end."""
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


def available_encounters(
    target: DirectoryUser, window: Window, unit: int | None = None, online: bool | None = None
) -> list[AvailableEncounter]:
    """The target's encounters in the window, in one SQL statement whatever their number."""
    scope = _scope(target, unit)
    if scope is None:
        return []
    conditions = [
        scope,
        Encounter.cancelled.is_(False),
        Encounter.starts_at >= window.starts,
        Encounter.starts_at < window.ends,
    ]
    if online is not None:
        conditions.append(Encounter.is_online.is_(online))
    statement = (
        select(
            Encounter.unit_number,
            Encounter.id,
            Encounter.starts_at,
            Encounter.ends_at,
            _status(target.id),
            Encounter.is_online,
            Center.id,
            Center.name,
            Center.reference_id,
        )
        .join(Center, Center.id == Encounter.center_id)
        .where(*conditions)
        .order_by(Encounter.starts_at, Encounter.id)
    )
    return [AvailableEncounter(*row) for row in db.session.execute(statement)]


def _scope(target: DirectoryUser, unit: int | None) -> ColumnElement[bool] | None:
    if target.role is Role.STAFF_MEMBER:
        if not target.center_ids:
            return None
        in_centers = Encounter.center_id.in_(sorted(target.center_ids))
        return in_centers if unit is None else and_(Encounter.unit_number == unit, in_centers)
    unit = unit or target.current_unit
    if unit is None:
        return None
    own_centers = Encounter.center_id.in_(sorted(target.center_ids))
    return and_(Encounter.unit_number == unit, or_(own_centers, Encounter.is_online.is_(True)))


def _status(user_id: uuid.UUID) -> ColumnElement[str]:
    active = and_(Booking.encounter_id == Encounter.id, Booking.cancelled.is_(False))
    booked = exists().where(active, Booking.user_id == user_id)
    taken = select(func.count()).where(active).scalar_subquery()
    return case(
        (booked, literal("Booked")),
        (taken >= Encounter.capacity, literal("Full")),
        else_=literal("Available"),
    ).label("status")
