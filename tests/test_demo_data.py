"""`flask --app wsgi demo-data`: deterministic, consistent, served, and careful with existing data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from service.db import db
from service.directory import Role
from service.models import Booking, Center, Encounter, StaffAssignment, User
from tests.database import (
    analyzed_tables,
    backend_name,
    live_and_dead_rows,
    miscounted_encounters,
    row_counts,
    table_snapshot,
)
from tests.dataset import Dataset
from tests.tokens import Tokens

SMALL = ["--centers", "3", "--students", "90", "--days", "4", "--start", "2030-01-05"]


def demo(app: Flask, *args: str) -> Result:
    """Run demo-data with `args`."""
    return app.test_cli_runner().invoke(args=["demo-data", *args])


def test_same_seed_same_network_other_seed_another(app: Flask, engine: Engine) -> None:
    assert demo(app, *SMALL, "--seed", "3").exit_code == 0
    first = table_snapshot(engine)

    again = demo(app, *SMALL, "--seed", "3", "--replace")
    assert again.exit_code == 0, again.output
    same = table_snapshot(engine)
    assert demo(app, *SMALL, "--seed", "4", "--replace").exit_code == 0
    other = table_snapshot(engine)

    assert same == first
    assert other["encounters"] != first["encounters"]
    assert other["users"] != first["users"]
    assert all(first.values())  # every table has rows


def test_summary_counts_what_is_there(app: Flask, engine: Engine) -> None:
    result = demo(app, *SMALL)

    assert result.exit_code == 0, result.output
    counts = {name: int(count.replace(",", "")) for count, name in re.findall(
        r"([\d,]+) ([a-z ]+?)(?:,|$)", result.stdout.split(": ", 1)[1].strip())}  # fmt: skip
    assert row_counts(engine) == {
        "bookings": counts["bookings"],
        "centers": 3,
        "encounters": counts["encounters"],
        "staff_centers": counts["staff assignments"],
        "users": 90 + 1,
    }
    assert (counts["students"], counts["staff members"]) == (90, 1)  # students / 50, at least one


def test_network_is_consistent(app: Flask, engine: Engine) -> None:
    assert demo(app, "--start", "2030-01-07").exit_code == 0  # a Monday; make run's defaults
    start = datetime(2030, 1, 7, tzinfo=UTC)

    with Session(engine) as db:
        students = db.scalars(select(User).where(User.role == Role.STUDENT)).all()
        staff_centers = db.execute(
            select(User.id, func.count(StaffAssignment.center_id))
            .outerjoin(StaffAssignment, StaffAssignment.user_id == User.id)
            .where(User.role == Role.STAFF_MEMBER)
            .group_by(User.id)
        ).all()
        encounters = db.scalars(select(Encounter)).all()
        taken = dict(
            db.execute(
                select(Booking.encounter_id, func.count())
                .where(Booking.cancelled.is_(False))
                .group_by(Booking.encounter_id)
            ).all()
        )
        misfits = db.scalar(
            select(func.count())
            .select_from(Booking)
            .join(Encounter, Encounter.id == Booking.encounter_id)
            .join(User, User.id == Booking.user_id)
            .where(
                or_(
                    User.role != Role.STUDENT,
                    User.current_unit != Encounter.unit_number,
                    and_(Encounter.is_online.is_(False), User.center_id != Encounter.center_id),
                )
            )
        )
        cancelled_bookings = db.scalar(select(func.count()).where(Booking.cancelled.is_(True)))
        center_refs = db.scalars(select(Center.reference_id).order_by(Center.reference_id)).all()

    assert center_refs == ["C-001", "C-002", "C-003", "C-004", "C-005"]
    assert len(students) == 200
    assert all(student.center_id is not None for student in students)
    assert 190 <= sum(student.current_unit is not None for student in students) < 200
    assert len(staff_centers) == 4 and all(1 <= count <= 3 for _, count in staff_centers)
    assert all(e.ends_at > e.starts_at for e in encounters)
    assert all(start <= e.starts_at < start + timedelta(days=14) for e in encounters)
    assert all(4 <= e.capacity <= 8 for e in encounters)
    assert 0.10 <= sum(e.is_online for e in encounters) / len(encounters) <= 0.20
    assert 0.03 <= sum(e.cancelled for e in encounters) / len(encounters) <= 0.07
    assert all(taken.get(e.id, 0) <= e.capacity for e in encounters)
    assert any(taken.get(e.id, 0) == e.capacity for e in encounters)  # some are full
    assert cancelled_bookings > 0
    assert misfits == 0  # bookings are by students of the encounter's unit, there or online
    assert not any(e.starts_at.weekday() == 6 for e in encounters)  # closed on Sundays


def test_readme_users_are_served(
    app: Flask, client: FlaskClient, engine: Engine, tokens: Tokens
) -> None:
    assert demo(app).exit_code == 0  # today, as `make run` builds it

    default_window = client.get(
        "/users/me/encounters", headers=tokens.header("ST-000001", "Student")
    )
    assert default_window.status_code == 200
    assert default_window.get_json()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    own = client.get(
        f"/users/me/encounters?from={tomorrow}", headers=tokens.header("ST-000001", "Student")
    )
    seen = client.get(
        f"/users/ST-000001/encounters?from={tomorrow}",
        headers=tokens.header("SM-0001", "StaffMember"),
    )

    assert own.status_code == 200
    assert len(own.get_json()) >= 5
    assert {e["CenterReferenceId"] for e in own.get_json() if not e["IsOnline"]} == {"C-001"}
    assert seen.status_code == 200
    assert seen.get_json() == own.get_json()
    staff = client.get("/users/me/encounters", headers=tokens.header("SM-0001", "StaffMember"))
    assert staff.status_code == 200
    assert "C-001" in {e["CenterReferenceId"] for e in staff.get_json()}


def test_refuses_a_database_that_holds_data(app: Flask, engine: Engine, dataset: Dataset) -> None:
    before = table_snapshot(engine)

    result = demo(app, *SMALL)

    assert result.exit_code == 1
    assert "the database already holds data; give --replace" in result.stderr
    assert table_snapshot(engine) == before


def test_replace_deletes_everything_first(
    app: Flask, client: FlaskClient, engine: Engine, dataset: Dataset, tokens: Tokens
) -> None:
    result = demo(app, *SMALL, "--staff", "5", "--replace")

    assert result.exit_code == 0, result.output
    assert row_counts(engine)["users"] == 95
    with engine.connect() as db:
        assert db.scalar(select(User.id).where(User.id == dataset["ana"])) is None
    gone = client.get("/users/me/encounters", headers=tokens.header("ST-000123", "Student"))
    demo_student = client.get("/users/me/encounters", headers=tokens.header("ST-000042"))
    assert gone.status_code == 403  # the dataset's Ana is no user any more
    assert demo_student.status_code == 200


def test_the_network_is_ready_to_serve(app: Flask, engine: Engine) -> None:
    """Counts kept, statistics gathered, and (PostgreSQL) no row written twice."""
    result = demo(app, "--centers", "2", "--students", "300", "--days", "3", "--seed", "5")

    assert result.exit_code == 0, result.output
    assert miscounted_encounters(engine) == 0
    tables = ["centers", "users", "staff_centers", "encounters", "bookings"]
    assert set(tables) <= analyzed_tables(engine)
    if backend_name() == "postgresql":
        with app.app_context():
            db.dispose()  # demo-data's session ends, and reports its counts
        rows = live_and_dead_rows(engine, tables)
        assert all(live > 0 and dead == 0 for live, dead in rows.values()), rows
