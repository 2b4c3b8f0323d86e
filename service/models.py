"""The database models: centers, users, staff assignments, encounters and bookings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    TypeDecorator,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.directory import Role

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# The largest value of an INTEGER column (units, capacities): what the schemas accept.
INT32_MAX = 2**31 - 1
# Columns of PostgreSQL alone, the answer's JSON members a row holds (migration 0005's generated
# columns, and 0006's copy of the center's members that triggers keep), left out of the models: no
# writer sets them, only the list statement reads them (by name), and SQLite has none. Migration
# comparisons leave them aside (`unmodelled`).
UNMODELLED_COLUMNS = frozenset(
    {
        ("encounters", "json_members"),
        ("centers", "json_members"),
        ("encounters", "center_json_members"),
    }
)


def unmodelled(
    item: object, name: str | None, kind: str, reflected: bool, _compare_to: object
) -> bool:
    """Alembic's `include_object`: False for a database column of UNMODELLED_COLUMNS."""
    table = getattr(getattr(item, "table", None), "name", None)
    return not (kind == "column" and reflected and (table, name) in UNMODELLED_COLUMNS)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; give an offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # PostgreSQL sessions are in UTC (db.py)
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Center(Base):
    __tablename__ = "centers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reference_id: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(254))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # Case-insensitive lookups are equality on these keys: index-backed on every backend.
        Index("ix_users_email_key", "email_key", unique=True),
        Index("ix_users_reference_key", "reference_key", unique=True),
        CheckConstraint("current_unit IS NULL OR current_unit >= 1", name="current_unit_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    reference_id: Mapped[str] = mapped_column(String(254))
    reference_key: Mapped[str] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", values_callable=lambda roles: [r.value for r in roles])
    )
    center_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("centers.id"))
    current_unit: Mapped[int | None]


class StaffAssignment(Base):
    __tablename__ = "staff_centers"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"), primary_key=True)


class Encounter(Base):
    __tablename__ = "encounters"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("unit_number >= 1", name="unit_positive"),
        # A staff member's list: a range scan per center.
        Index("ix_encounters_center_start", "center_id", "starts_at"),
        # A student's list: their center's encounters of one unit, plus every online one.
        Index("ix_encounters_unit_center_start", "unit_number", "center_id", "starts_at"),
        Index(
            "ix_encounters_online_unit_start",
            "unit_number",
            "starts_at",
            postgresql_where=text("is_online"),
            # As SQLAlchemy writes the condition there, so that SQLite matches it (0002).
            sqlite_where=text("is_online = 1"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    unit_number: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    is_online: Mapped[bool] = mapped_column(default=False)
    capacity: Mapped[int]
    cancelled: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Kept by triggers on `bookings` (migration 0003); no writer sets it.
    active_bookings: Mapped[int] = mapped_column(server_default=text("0"))


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        # An encounter's status: its active bookings counted, the target's found, index-only.
        Index(
            "ix_bookings_active",
            "encounter_id",
            "user_id",
            postgresql_where=text("NOT cancelled"),
            sqlite_where=text("cancelled = 0"),
        ),
        # A target's own active bookings (their `Booked`), read once per list.
        Index(
            "ix_bookings_user_active",
            "user_id",
            "encounter_id",
            postgresql_where=text("NOT cancelled"),
            sqlite_where=text("cancelled = 0"),
        ),
    )

    encounter_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    cancelled: Mapped[bool] = mapped_column(default=False, server_default=false())


def lookup_key(text: str) -> str:
    """The case-insensitive form an email or reference id is stored and looked up by."""
    return text.lower()
