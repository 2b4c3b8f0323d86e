"""`encounters.active_bookings` (migration 0003) is the count of the encounter's active bookings
after every kind of write to `bookings`, and the Status served from it is the one SPEC 5 defines.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)


def gid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"active-bookings-test/{name}"))


def stored(value: str, engine: Engine) -> str:
    """A GUID as the backend stores it (SQLite: 32 hex digits)."""
    return uuid.UUID(value).hex if engine.dialect.name == "sqlite" else value


def document(bookings: list[dict[str, Any]], capacity: int = 2) -> dict[str, Any]:
    """A center, three students of unit 2 and one encounter of theirs, with `bookings`."""
    students = [
        {"Id": gid(name), "ReferenceId": f"ST-{name}", "Email": f"{name}@example.org",
         "Role": "Student", "CenterId": gid("center"), "CurrentUnit": 2}
        for name in ("ana", "bo", "cy")
    ]  # fmt: skip
    return {
        "centers": [{"Id": gid("center"), "ReferenceId": "C-1", "Name": "Porto"}],
        "users": students,
        "encounters": [
            {"Id": gid("class"), "CenterId": gid("center"), "UnitNumber": 2,
             "DateTime": START.isoformat(), "EndDate": (START + timedelta(hours=1)).isoformat(),
             "IsOnline": False, "Capacity": capacity, "Cancelled": False},
        ],
        "bookings": bookings,
    }  # fmt: skip


def booking(name: str, cancelled: bool = False) -> dict[str, Any]:
    return {"EncounterId": gid("class"), "UserId": gid(name), "Cancelled": cancelled}


def load(app: Flask, tmp_path: Path, content: dict[str, Any]) -> None:
    path = tmp_path / "document.json"
    path.write_text(json.dumps(content))
    result = app.test_cli_runner().invoke(args=["load-data", str(path)])
    assert result.exit_code == 0, result.output


def counts(engine: Engine) -> tuple[int, int]:
    """(the kept count, the count of the active bookings) of the encounter."""
    with engine.connect() as connection:
        kept, actual = connection.execute(
            text(
                "SELECT active_bookings, (SELECT count(*) FROM bookings b"
                " WHERE b.encounter_id = e.id AND NOT b.cancelled) FROM encounters e"
                " WHERE e.id = :id"
            ),
            {"id": stored(gid("class"), engine)},
        ).one()
    return kept, actual


def status(client: FlaskClient, tokens: Any, student: str) -> str:
    response = client.get(
        "/users/me/encounters",
        headers=tokens.header(f"ST-{student}", "Student"),
        query_string={"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (item,) = response.get_json()
    return str(item["Status"])


def test_load_data_keeps_the_count_through_every_change(
    app: Flask, client: FlaskClient, engine: Engine, tokens: Any, tmp_path: Path
) -> None:
    load(app, tmp_path, document([booking("ana"), booking("bo")]))
    assert counts(engine) == (2, 2)
    assert (status(client, tokens, "ana"), status(client, tokens, "cy")) == ("Booked", "Full")

    load(app, tmp_path, document([booking("bo", cancelled=True)]))  # an update of one booking
    assert counts(engine) == (1, 1)
    assert (status(client, tokens, "bo"), status(client, tokens, "cy")) == ("Available",) * 2

    # The encounter written again (with a larger capacity, no bookings): its count stays.
    load(app, tmp_path, document([], capacity=1))
    assert counts(engine) == (1, 1)
    assert status(client, tokens, "cy") == "Full"


def test_any_writer_keeps_the_count(
    app: Flask, client: FlaskClient, engine: Engine, tokens: Any, tmp_path: Path
) -> None:
    load(app, tmp_path, document([]))
    encounter = stored(gid("class"), engine)
    users = {name: stored(gid(name), engine) for name in ("ana", "bo", "cy")}
    false, true = ("0", "1") if engine.dialect.name == "sqlite" else ("false", "true")
    steps = [
        # Several rows in one statement, then changes of state, of encounter, deletions.
        f"INSERT INTO bookings (encounter_id, user_id, cancelled) VALUES"
        f" ('{encounter}', '{users['ana']}', {false}), ('{encounter}', '{users['bo']}', {false}),"
        f" ('{encounter}', '{users['cy']}', {true})",
        f"UPDATE bookings SET cancelled = NOT cancelled WHERE user_id = '{users['cy']}'",
        f"UPDATE bookings SET cancelled = {true}",
        f"UPDATE bookings SET cancelled = {false} WHERE user_id <> '{users['ana']}'",
        f"DELETE FROM bookings WHERE user_id = '{users['bo']}'",
        f"DELETE FROM users WHERE id = '{users['cy']}'",  # its bookings go by cascade
    ]
    for step in steps:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            connection.exec_driver_sql(step)
        kept, actual = counts(engine)
        assert kept == actual, step
    assert counts(engine) == (0, 0)
    assert status(client, tokens, "ana") == "Available"
