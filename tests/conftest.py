"""Shared fixtures: a fresh app and database per test, a known dataset, and real tokens.

The suite runs on SQLite by default; with TEST_DATABASE_URL it runs on that PostgreSQL database
(its tables are dropped and migrated once per session, then emptied before every test).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, MetaData, text

from service.admin.migrate import upgrade
from service.app import create_app
from service.db import make_engine
from service.models import (
    Base,
    Booking,
    Center,
    Encounter,
    Role,
    StaffAssignment,
    User,
    lookup_key,
)

SECRET = "test-secret-that-is-long-enough-0123456789"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") or None
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)


def backend_name() -> str:
    """'postgresql' when TEST_DATABASE_URL is set, else 'sqlite'."""
    return "postgresql" if POSTGRES_URL else "sqlite"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once per session: a SQLite file to copy, or the PostgreSQL URL."""
    if POSTGRES_URL:
        engine = make_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        upgrade(engine)
        engine.dispose()
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return str(path)


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database for this test alone."""
    if POSTGRES_URL:
        engine = make_engine(POSTGRES_URL)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} CASCADE"))
        engine.dispose()
        yield POSTGRES_URL
        return
    path = tmp_path / "encounters.db"
    shutil.copyfile(migrated_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def config(database_url: str) -> dict[str, Any]:
    """The app configuration of a test; tests may change it before `app` is built."""
    return {
        "DATABASE_URL": database_url,
        "JWT_SECRET": SECRET,
        "JWT_ALGORITHMS": "HS256",
    }


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    """A fresh app on the test's database."""
    application = create_app(config)
    application.config["TESTING"] = True
    yield application
    with application.app_context():
        from service.db import db

        db.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def engine(app: Flask) -> Iterator[Engine]:
    """A separate engine on the test's database, for arranging and inspecting rows."""
    engine = make_engine(app.extensions["encounters.settings"].database_url)
    yield engine
    engine.dispose()


class Tokens:
    """Mints real HS256 tokens for the test deployment; any claim can be overridden."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret

    def mint(
        self,
        subject: Any = "ST-000123",
        role: Any = "Student",
        *,
        headers: dict[str, Any] | None = None,
        key: Any = None,
        algorithm: str = "HS256",
        **claims: Any,
    ) -> str:
        """A token for `subject` with `role`; `claims` set (or, with None, remove) claims."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": subject,
            "role": role,
            "iat": now,
            "exp": now + 600,
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key or self.secret, algorithm=algorithm, headers=headers)

    def header(
        self, subject: Any = "ST-000123", role: Any = "Student", **claims: Any
    ) -> dict[str, str]:
        """An Authorization header carrying a fresh token."""
        return {"Authorization": f"Bearer {self.mint(subject, role, **claims)}"}


@pytest.fixture
def tokens() -> Tokens:
    """The token minter of the test deployment."""
    return Tokens()


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"encounters-test/{name}")


@dataclass(frozen=True)
class Dataset:
    """The known dataset's ids, by the names the tests use."""

    ids: dict[str, uuid.UUID]

    def __getitem__(self, name: str) -> uuid.UUID:
        return self.ids[name]


CENTERS = {
    "lisbon": ("C-LIS", "Lisbon Downtown"),
    "porto": ("C-POR", "Porto"),
    "madrid": ("C-MAD", "Madrid"),
}
USERS: dict[str, dict[str, Any]] = {
    "ana": {"ref": "ST-000123", "email": "Ana.Lima@example.com", "role": Role.STUDENT,
            "center": "lisbon", "unit": 3},
    "bruno": {"ref": "ST/2026/7", "email": "bruno@example.com", "role": Role.STUDENT,
              "center": "porto", "unit": 3},
    "carla": {"ref": "ST-000200", "email": "carla@example.com", "role": Role.STUDENT,
              "center": "lisbon", "unit": None},
    "rui": {"ref": "SM-1", "email": "rui@example.com", "role": Role.STAFF_MEMBER,
            "centers": ["lisbon", "madrid"]},
    "sara": {"ref": "SM-2", "email": "sara@example.com", "role": Role.STAFF_MEMBER,
             "centers": ["porto"]},
    "guidref": {"ref": "1b4e28ba2fa111d2883f0016d3cca427", "email": "g@example.com",
                "role": Role.STUDENT, "center": "madrid", "unit": 1},
    "meref": {"ref": "me", "email": "me@example.com", "role": Role.STUDENT, "center": "madrid",
              "unit": 1},
    "atref": {"ref": "odd@reference", "email": "odd@example.com", "role": Role.STUDENT,
              "center": "madrid", "unit": 1},
}  # fmt: skip
# name: (center, unit, days after BASE, minutes long, online, capacity, cancelled)
ENCOUNTERS: dict[str, tuple[str, int, float, int, bool, int, bool]] = {
    "lis_booked": ("lisbon", 3, 1, 60, False, 2, False),
    "lis_full": ("lisbon", 3, 2, 90, False, 1, False),
    "por_online": ("porto", 3, 3, 45, True, 5, False),
    "por_center": ("porto", 3, 1, 60, False, 5, False),
    "lis_unit4": ("lisbon", 4, 1, 60, False, 5, False),
    "lis_cancelled": ("lisbon", 3, 1.5, 60, False, 5, True),
    "lis_later": ("lisbon", 3, 20, 60, False, 5, False),
    "lis_freed": ("lisbon", 3, 4, 60, False, 1, False),
    "mad_unit1": ("madrid", 1, 1, 30, False, 4, False),
    "lis_past": ("lisbon", 3, -3, 60, False, 5, False),
    "lis_same_time": ("lisbon", 3, 4, 60, True, 3, False),
}
# (encounter, user, cancelled)
BOOKINGS = [
    ("lis_booked", "ana", False),
    ("lis_full", "carla", False),
    ("lis_freed", "carla", True),
    ("lis_cancelled", "ana", False),
    ("por_center", "bruno", False),
]


def insert_dataset(engine: Engine) -> Dataset:
    """Write the known dataset; return its ids."""
    ids = {name: _id(name) for name in [*CENTERS, *USERS, *ENCOUNTERS]}
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        session.add_all(
            Center(id=ids[name], reference_id=ref, name=label)
            for name, (ref, label) in CENTERS.items()
        )
        session.flush()
        for name, user in USERS.items():
            session.add(
                User(
                    id=ids[name],
                    email=user["email"],
                    email_key=lookup_key(user["email"]),
                    reference_id=user["ref"],
                    reference_key=lookup_key(user["ref"]),
                    role=user["role"],
                    center_id=ids[user["center"]] if "center" in user else None,
                    current_unit=user.get("unit"),
                )
            )
            session.flush()
            for center in user.get("centers", []):
                session.add(StaffAssignment(user_id=ids[name], center_id=ids[center]))
        for name, (
            center,
            unit,
            days,
            minutes,
            online,
            capacity,
            cancelled,
        ) in ENCOUNTERS.items():
            starts = BASE + timedelta(days=days)
            session.add(
                Encounter(
                    id=ids[name],
                    center_id=ids[center],
                    unit_number=unit,
                    starts_at=starts,
                    ends_at=starts + timedelta(minutes=minutes),
                    is_online=online,
                    capacity=capacity,
                    cancelled=cancelled,
                )
            )
        session.flush()
        session.add_all(
            Booking(encounter_id=ids[e], user_id=ids[u], cancelled=c) for e, u, c in BOOKINGS
        )
        session.commit()
    return Dataset(ids)  # fmt: skip


@pytest.fixture
def dataset(engine: Engine) -> Dataset:
    """The known dataset, written to the test's database."""
    return insert_dataset(engine)


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: for checking that a failed write changed nothing."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in sorted(metadata.tables)
            if name != "alembic_version"
        }


def table_snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, sorted: for checking that a failed write changed nothing."""
    with engine.connect() as connection:
        return {
            table.name: sorted(tuple(map(str, row)) for row in connection.execute(table.select()))
            for table in Base.metadata.sorted_tables
        }


MakeHeaders = Callable[..., dict[str, str]]
