"""The known dataset of the tests (and of the soak): three centers, eight users, their encounters.

Rows are named tuples keyed by the names the tests use; `insert_dataset` writes them and returns
their ids. Times are relative to BASE (the next whole hour, a day from now), so the dataset is
always in the default window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.directory import Role
from service.models import Booking, Center, Encounter, StaffAssignment, User, lookup_key

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)


class CenterRow(NamedTuple):
    reference_id: str
    name: str


class UserRow(NamedTuple):
    reference_id: str
    email: str
    role: Role
    center: str | None = None  # a student's own center
    unit: int | None = None  # a student's current unit
    centers: tuple[str, ...] = ()  # a staff member's assignments

    @property
    def center_names(self) -> set[str]:
        """The centers the user belongs to: a student's own, or a staff member's assignments."""
        return set(self.centers) if self.role is Role.STAFF_MEMBER else {str(self.center)}


class EncounterRow(NamedTuple):
    center: str
    unit: int
    days: float  # after BASE
    minutes: int
    online: bool
    capacity: int
    cancelled: bool = False

    @property
    def starts(self) -> datetime:
        """The start, as the service answers it."""
        return BASE + timedelta(days=self.days)


class BookingRow(NamedTuple):
    encounter: str
    user: str
    cancelled: bool = False


CENTERS = {
    "lisbon": CenterRow("C-LIS", "Lisbon Downtown"),
    "porto": CenterRow("C-POR", "Porto"),
    "madrid": CenterRow("C-MAD", "Madrid"),
}
STUDENT, STAFF = Role.STUDENT, Role.STAFF_MEMBER
USERS = {
    "ana": UserRow("ST-000123", "Ana.Lima@example.com", STUDENT, "lisbon", 3),
    "bruno": UserRow("ST/2026/7", "bruno@example.com", STUDENT, "porto", 3),
    "carla": UserRow("ST-000200", "carla@example.com", STUDENT, "lisbon", None),
    "rui": UserRow("SM-1", "rui@example.com", STAFF, centers=("lisbon", "madrid")),
    "sara": UserRow("SM-2", "sara@example.com", STAFF, centers=("porto",)),
    "guidref": UserRow("1b4e28ba2fa111d2883f0016d3cca427", "g@example.com", STUDENT, "madrid", 1),
    "meref": UserRow("me", "me@example.com", STUDENT, "madrid", 1),
    "atref": UserRow("odd@reference", "odd@example.com", STUDENT, "madrid", 1),
}
ENCOUNTERS = {
    "lis_booked": EncounterRow("lisbon", 3, 1, 60, False, 2),
    "lis_full": EncounterRow("lisbon", 3, 2, 90, False, 1),
    "por_online": EncounterRow("porto", 3, 3, 45, True, 5),
    "por_center": EncounterRow("porto", 3, 1, 60, False, 5),
    "lis_unit4": EncounterRow("lisbon", 4, 1, 60, False, 5),
    "lis_cancelled": EncounterRow("lisbon", 3, 1.5, 60, False, 5, cancelled=True),
    "lis_later": EncounterRow("lisbon", 3, 20, 60, False, 5),
    "lis_freed": EncounterRow("lisbon", 3, 4, 60, False, 1),
    "mad_unit1": EncounterRow("madrid", 1, 1, 30, False, 4),
    "lis_past": EncounterRow("lisbon", 3, -3, 60, False, 5),
    "lis_same_time": EncounterRow("lisbon", 3, 4, 60, True, 3),
}
BOOKINGS = [
    BookingRow("lis_booked", "ana"),
    BookingRow("lis_full", "carla"),
    BookingRow("lis_freed", "carla", cancelled=True),
    BookingRow("lis_cancelled", "ana"),
    BookingRow("por_center", "bruno"),
]


def dataset_id(name: str) -> uuid.UUID:
    """The id of a center, user or encounter of the dataset, by its name."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"encounters-test/{name}")


@dataclass(frozen=True)
class Dataset:
    """The known dataset's ids, by the names the tests use."""

    ids: dict[str, uuid.UUID]

    def __getitem__(self, name: str) -> uuid.UUID:
        return self.ids[name]


def insert_dataset(engine: Engine) -> Dataset:
    """Write the known dataset; return its ids."""
    ids = {name: dataset_id(name) for name in [*CENTERS, *USERS, *ENCOUNTERS]}
    with Session(engine) as session:
        session.add_all(
            Center(id=ids[name], reference_id=center.reference_id, name=center.name)
            for name, center in CENTERS.items()
        )
        session.flush()
        for name, user in USERS.items():
            session.add(
                User(
                    id=ids[name],
                    email=user.email,
                    email_key=lookup_key(user.email),
                    reference_id=user.reference_id,
                    reference_key=lookup_key(user.reference_id),
                    role=user.role,
                    center_id=ids[user.center] if user.center else None,
                    current_unit=user.unit,
                )
            )
            session.flush()
            session.add_all(
                StaffAssignment(user_id=ids[name], center_id=ids[center]) for center in user.centers
            )
        session.add_all(
            Encounter(
                id=ids[name],
                center_id=ids[encounter.center],
                unit_number=encounter.unit,
                starts_at=encounter.starts,
                ends_at=encounter.starts + timedelta(minutes=encounter.minutes),
                is_online=encounter.online,
                capacity=encounter.capacity,
                cancelled=encounter.cancelled,
            )
            for name, encounter in ENCOUNTERS.items()
        )
        session.flush()
        session.add_all(
            Booking(
                encounter_id=ids[booking.encounter],
                user_id=ids[booking.user],
                cancelled=booking.cancelled,
            )
            for booking in BOOKINGS
        )
        session.commit()
    return Dataset(ids)
