"""`flask --app wsgi load-data FILE`: a valid document is served; a bad one changes nothing."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.database import backend_name, row_counts, table_snapshot
from tests.dataset import BASE, Dataset
from tests.tokens import Tokens


def gid(name: str) -> str:
    """A stable GUID for a record of the test document."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"load-data-test/{name}"))


def at(days: float, minutes: int = 0, offset_hours: int = 0) -> str:
    """BASE + days + minutes, written with the given UTC offset."""
    from datetime import timezone

    moment = BASE + timedelta(days=days, minutes=minutes)
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def valid_document() -> dict[str, Any]:
    """Two centers, two students, a staff member, four encounters, two bookings."""
    return {
        "centers": [
            {"Id": gid("alfama"), "ReferenceId": "C-ALF", "Name": "Lisbon Alfama"},
            {"Id": gid("braga"), "ReferenceId": "C-BRG", "Name": "Braga"},
        ],
        "users": [
            {"Id": gid("lia"), "ReferenceId": "ST-1", "Email": "lia@example.org",
             "Role": "Student", "CenterId": gid("alfama"), "CurrentUnit": 2},
            {"Id": gid("tom"), "ReferenceId": "ST-2", "Email": "tom@example.org",
             "Role": "Student", "CenterId": gid("braga"), "CurrentUnit": 2},
            {"Id": gid("ines"), "ReferenceId": "SM-9", "Email": "ines@example.org",
             "Role": "StaffMember", "CenterIds": [gid("alfama")]},
        ],
        "encounters": [
            {"Id": gid("alfama-2"), "CenterId": gid("alfama"), "UnitNumber": 2,
             "DateTime": at(1), "EndDate": at(1, 60), "IsOnline": False, "Capacity": 2,
             "Cancelled": False},
            # Written in +02:00: stored and served in UTC.
            {"Id": gid("braga-online"), "CenterId": gid("braga"), "UnitNumber": 2,
             "DateTime": at(2, 0, 2), "EndDate": at(2, 45, 2), "IsOnline": True, "Capacity": 1},
            {"Id": gid("braga-2"), "CenterId": gid("braga"), "UnitNumber": 2,
             "DateTime": at(1), "EndDate": at(1, 60), "IsOnline": False, "Capacity": 5},
            {"Id": gid("alfama-3"), "CenterId": gid("alfama"), "UnitNumber": 3,
             "DateTime": at(3), "EndDate": at(3, 90), "IsOnline": False, "Capacity": 5},
        ],
        "bookings": [
            {"EncounterId": gid("alfama-2"), "UserId": gid("lia"), "Cancelled": False},
            {"EncounterId": gid("braga-online"), "UserId": gid("tom")},
        ],
    }  # fmt: skip


def load(app: Flask, tmp_path: Path, document: Any) -> Result:
    """Run load-data on `document` (written as JSON unless it is already text)."""
    path = tmp_path / "document.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return app.test_cli_runner().invoke(args=["load-data", str(path)])


def ids(response: Any) -> list[str]:
    """The encounter Ids of a response, in order."""
    return [element["Id"] for element in response.get_json()]


def test_valid_document_loads_and_is_served(
    app: Flask, client: FlaskClient, engine: Engine, tokens: Tokens, tmp_path: Path
) -> None:
    result = load(app, tmp_path, valid_document())

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "loaded (inserted or updated) 2 centers, 3 users (1 staff assignments), "
        "4 encounters and 2 bookings"
    )
    assert row_counts(engine) == {
        "bookings": 2, "centers": 2, "encounters": 4, "staff_centers": 1, "users": 3,
    }  # fmt: skip
    response = client.get("/users/me/encounters", headers=tokens.header("ST-1", "Student"))
    assert response.status_code == 200
    first, second = response.get_json()
    assert first == {
        "UnitNumber": 2,
        "Id": gid("alfama-2"),
        "DateTime": at(1),
        "EndDate": at(1, 60),
        "Duration": 60,
        "Status": "Booked",
        "IsOnline": False,
        "CenterId": gid("alfama"),
        "CenterName": "Lisbon Alfama",
        "CenterReferenceId": "C-ALF",
    }
    assert (second["Id"], second["Status"]) == (gid("braga-online"), "Full")
    assert (second["DateTime"], second["Duration"]) == (at(2), 45)

    staff = client.get("/users/LIA@example.org/encounters", headers=tokens.header("SM-9", "StaffMember"))  # fmt: skip
    assert staff.status_code == 200
    assert ids(staff) == [gid("alfama-2"), gid("braga-online")]


def test_encounters_are_written_in_the_order_the_list_reads_them(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    """In-center ones by unit, center and start; then online ones by unit and start (a list's
    rows share pages: service/admin/merge.py), whatever the document's order."""
    document = valid_document()
    document["encounters"].reverse()
    assert load(app, tmp_path, document).exit_code == 0

    def key(record: dict[str, Any]) -> tuple[Any, ...]:
        center = None if record["IsOnline"] else uuid.UUID(record["CenterId"])
        return (record["IsOnline"], record["UnitNumber"], center or uuid.UUID(int=0),
                record["DateTime"])  # fmt: skip

    expected = [record["Id"] for record in sorted(document["encounters"], key=key)]
    physical = "ctid" if backend_name() == "postgresql" else "rowid"
    with engine.connect() as connection:
        written = connection.execute(text(f"SELECT id FROM encounters ORDER BY {physical}"))
        assert [str(uuid.UUID(str(row[0]))) for row in written] == expected


def test_second_load_updates_in_place(
    app: Flask, client: FlaskClient, engine: Engine, tokens: Tokens, tmp_path: Path
) -> None:
    document = valid_document()
    assert load(app, tmp_path, document).exit_code == 0
    counts = row_counts(engine)

    document["centers"][0]["Name"] = "Lisbon Alfama (new rooms)"
    document["encounters"][0]["Capacity"] = 1
    document["users"][0]["Email"] = "lia.new@example.org"
    document["users"][2]["CenterIds"] = [gid("braga")]
    document["bookings"][0]["Cancelled"] = True
    document["bookings"].append({"EncounterId": gid("alfama-2"), "UserId": gid("ines")})
    result = load(app, tmp_path, document)

    assert result.exit_code == 0, result.output
    assert row_counts(engine) == counts | {"bookings": 3}
    response = client.get("/users/lia.new@example.org/encounters", headers=tokens.header("ST-1"))
    assert response.status_code == 200
    first = response.get_json()[0]
    assert (first["CenterName"], first["Status"]) == ("Lisbon Alfama (new rooms)", "Full")
    staff = client.get("/users/me/encounters", headers=tokens.header("SM-9", "StaffMember"))
    assert ids(staff) == [gid("braga-2"), gid("braga-online")]


def test_users_may_swap_emails_and_reference_ids(
    app: Flask, client: FlaskClient, dataset: Dataset, tokens: Tokens, tmp_path: Path
) -> None:
    ana = {
        "Id": str(dataset["ana"]),
        "ReferenceId": "ST/2026/7",
        "Email": "bruno@example.com",
        "Role": "Student",
        "CenterId": str(dataset["lisbon"]),
        "CurrentUnit": 3,
    }
    bruno = {"Id": str(dataset["bruno"]), "ReferenceId": "ST-000123", "Email": "ana.lima@example.com",
             "Role": "Student", "CenterId": str(dataset["porto"]), "CurrentUnit": 3}  # fmt: skip
    result = load(app, tmp_path, {"users": [ana, bruno]})

    assert result.exit_code == 0, result.output
    response = client.get("/users/me/encounters", headers=tokens.header("bruno@example.com"))
    assert response.status_code == 200
    assert ids(response)[0] == str(dataset["lis_booked"])  # Ana's booking, under her new email


def test_standard_input(app: Flask, engine: Engine) -> None:
    document = {"centers": valid_document()["centers"]}
    result = app.test_cli_runner().invoke(args=["load-data", "-"], input=json.dumps(document))

    assert result.exit_code == 0, result.output
    assert row_counts(engine)["centers"] == 2


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the valid document: set (or, with ..., delete) the key at `users.0.Email`."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        target: Any = document
        for part in parents:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value

    return change


def _duplicate_booking(document: dict[str, Any]) -> None:
    document["bookings"].append(copy.deepcopy(document["bookings"][0]))


LIA = f"users[0] (Id {gid('lia')})"
ENCOUNTER = f"encounters[0] (Id {gid('alfama-2')})"
MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "bad guid": (_set("users.0.Id", "9f-not-a-guid"), "users[0] (Id 9f-not-a-guid): Id: Not a valid GUID."),
    "bad guid in a list": (_set("users.2.CenterIds", ["x"]), "CenterIds[0]: Not a valid GUID."),
    "missing field": (_set("encounters.0.Capacity", ...), f"{ENCOUNTER}: Capacity: Missing data for required field."),
    "integer as text": (_set("encounters.0.Capacity", "6"), f"{ENCOUNTER}: Capacity: Not a valid integer."),
    "fractional unit": (_set("encounters.0.UnitNumber", 2.5), f"{ENCOUNTER}: UnitNumber: Not a valid integer."),
    "boolean as number": (_set("encounters.0.IsOnline", 1), f"{ENCOUNTER}: IsOnline: Not a valid boolean"),
    "name as number": (_set("centers.0.Name", 7), "centers[0] (Id " + gid("alfama") + "): Name: Not a valid string."),
    "record not an object": (_set("bookings.0", "x"), "bookings[0]: Must be a JSON object."),
    "list not a list": (_set("users", {"Id": 1}), "users: Not a valid list."),
    "unknown key": (_set("users.0.Nickname", "li"), f"{LIA}: Nickname: Unknown key."),
    "unknown list": (_set("rooms", []), "rooms: Unknown key."),
    "duplicate id": (_set("centers.1.Id", gid("alfama")), f"centers[1] (Id {gid('alfama')}): Id: Same Id as centers[0]."),
    "duplicate booking": (_duplicate_booking, f"bookings[2] (EncounterId {gid('alfama-2')}, UserId {gid('lia')}): Same EncounterId and UserId as bookings[0]."),
    "duplicate email": (_set("users.1.Email", "LIA@example.ORG"), "users[1] (Id " + gid("tom") + "): Email: Same as users[0] (ignoring case)."),
    "duplicate reference": (_set("users.1.ReferenceId", "st-1"), "ReferenceId: Same as users[0] (ignoring case)."),
    "unknown encounter": (_set("bookings.0.EncounterId", gid("nowhere")), f"bookings[0] (EncounterId {gid('nowhere')}, UserId {gid('lia')}): EncounterId: No encounter with this Id in the document or the database."),
    "unknown user": (_set("bookings.0.UserId", gid("nobody")), "UserId: No user with this Id in the document or the database."),
    "unknown center": (_set("encounters.0.CenterId", gid("nowhere")), f"{ENCOUNTER}: CenterId: No center with this Id in the document or the database."),
    "student with center ids": (_set("users.0.CenterIds", [gid("alfama")]), f"{LIA}: CenterIds: A Student has one CenterId, not CenterIds."),
    "student without center": (_set("users.0.CenterId", None), f"{LIA}: CenterId: A Student needs a CenterId."),
    "staff with center": (_set("users.2.CenterId", gid("alfama")), "CenterId: A StaffMember has CenterIds, not CenterId."),
    "staff with unit": (_set("users.2.CurrentUnit", 2), "CurrentUnit: A StaffMember has CenterIds, not CurrentUnit."),
    "staff without center ids": (_set("users.2.CenterIds", ...), "CenterIds: A StaffMember needs CenterIds"),
    "unknown role": (_set("users.0.Role", "student"), f"{LIA}: Role: Must be one of: Student, StaffMember."),
    "unit zero": (_set("users.0.CurrentUnit", 0), f"{LIA}: CurrentUnit: Must be greater than or equal to 1"),
    "time without offset": (_set("encounters.0.DateTime", "2030-01-01T10:00:00"), f"{ENCOUNTER}: DateTime: Needs an offset"),
    "date only": (_set("encounters.0.EndDate", "2030-01-01"), f"{ENCOUNTER}: EndDate: Needs an offset"),
    "not a time": (_set("encounters.0.DateTime", "tomorrow"), f"{ENCOUNTER}: DateTime: Not a valid datetime."),
    "end before start": (_set("encounters.0.EndDate", at(1, -30)), f"{ENCOUNTER}: EndDate: Must be after DateTime."),
    "end equals start": (_set("encounters.0.EndDate", at(1)), f"{ENCOUNTER}: EndDate: Must be after DateTime."),
    "capacity below zero": (_set("encounters.0.Capacity", -1), f"{ENCOUNTER}: Capacity: Must be greater than or equal to 0"),
    "capacity too large": (_set("encounters.0.Capacity", 2**31), "Capacity: Must be greater than or equal to 0 and less than or equal to 2147483647."),
    "email used by another user": (_set("users.0.Email", "ANA.LIMA@example.com"), f"{LIA}: Email: Already used by another user (Id {uuid.uuid5(uuid.NAMESPACE_URL, 'encounters-test/ana')})."),
    "reference used by another user": (_set("users.1.ReferenceId", "sm-1"), "ReferenceId: Already used by another user"),
    "email without at": (_set("users.0.Email", "lia.example.org"), f"{LIA}: Email: Not a valid email address."),
    "email with two ats": (_set("users.0.Email", "lia@x@example.org"), f"{LIA}: Email: Not a valid email address."),
    "empty reference": (_set("users.0.ReferenceId", ""), f"{LIA}: ReferenceId: Must be 1 to 254 characters long."),
    "long name": (_set("centers.0.Name", "x" * 255), "Name: Must be 1 to 254 characters long."),
    "control character": (_set("centers.0.Name", "Lisbon\nAlfama"), "Name: Must not contain control or unprintable characters."),
    "padded reference": (_set("users.0.ReferenceId", " ST-1"), f"{LIA}: ReferenceId: Must not start or end with white space."),
    "center twice in a list": (_set("users.2.CenterIds", [gid("alfama"), gid("alfama")]), "CenterIds: Names the same center twice."),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_document_changes_nothing(
    case: str, app: Flask, engine: Engine, dataset: Dataset, tmp_path: Path
) -> None:
    change, message = MALFORMED[case]
    document = valid_document()
    change(document)
    before = table_snapshot(engine)

    result = load(app, tmp_path, document)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: nothing was written;")
    assert message in result.stderr
    assert table_snapshot(engine) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"centers": [', "the document is not JSON: Expecting value (line 1, column 14)"),
        ("", "the document is not JSON: Expecting value (line 1, column 1)"),
        ('{"centers": [], "centers": []}', "the key 'centers' appears twice in one object"),
        ('{"encounters": [{"Capacity": NaN}]}', "the document is not JSON: NaN is not a JSON number"),
        ("[]", "must be a JSON object with the lists centers, users, encounters, bookings, not an array"),
        ('"users"', "not a single value"),
        # These crashed the command before it streamed (a traceback instead of a refusal).
        ("[" * 100_000, "not an array"),
        ('{"centers": ' + "[" * 100_000, "Arrays or objects nested too deeply (line 1, column 14)"),
        ('{"centers": [{"Name": ' + "[" * 100_000 + "]}]}", "nested too deeply (line 1, column 14)"),
        ('{"encounters": [{"Capacity": ' + "9" * 5000 + "}]}", "An integer of more than 4300 digits"),
        ('{"encounters": [{"Capacity": Infinity}]}', "Infinity is not a JSON number"),
        ('{"centers": [{"Id": 1, "Id": 2}]}', "the key 'Id' appears twice in one object"),
        ('{"centers": [{"Id": "x"}]', "Expecting ',' delimiter (line 1, column 26)"),
        ('{"centers": []} {}', "Extra data (line 1, column 17)"),
    ],
)  # fmt: skip
def test_text_that_is_no_document_changes_nothing(
    text: str, message: str, app: Flask, engine: Engine, dataset: Dataset, tmp_path: Path
) -> None:
    before = table_snapshot(engine)

    result = load(app, tmp_path, text)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: nothing was written; 1 problem:\n  "), result.stderr
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 2
    assert table_snapshot(engine) == before


def test_bytes_that_are_no_text_change_nothing(app: Flask, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "document.json"
    path.write_bytes(b'{"centers": ["\xff"]}')

    result = app.test_cli_runner().invoke(args=["load-data", str(path)])

    assert result.exit_code == 1
    assert "the document is not UTF-8 text" in result.stderr
    assert row_counts(engine)["centers"] == 0


def test_an_empty_document_is_a_valid_one(app: Flask, engine: Engine, tmp_path: Path) -> None:
    result = load(app, tmp_path, {})

    assert result.exit_code == 0, result.output
    assert "0 centers" in result.stdout


def test_errors_are_listed_up_to_twenty(app: Flask, engine: Engine, tmp_path: Path) -> None:
    centers = [{"Id": f"bad-{n}", "ReferenceId": "C", "Name": "C"} for n in range(30)]

    result = load(app, tmp_path, {"centers": centers})

    lines = result.stderr.splitlines()
    assert lines[0] == "Error: nothing was written; 30 problems:"
    assert lines[1] == "  centers[0] (Id bad-0): Id: Not a valid GUID."
    assert lines[20] == "  centers[19] (Id bad-19): Id: Not a valid GUID."
    assert lines[21:] == ["  and 10 more"]


def test_large_document_with_one_bad_record_at_the_end(
    app: Flask, engine: Engine, dataset: Dataset, tmp_path: Path
) -> None:
    students = [
        {"Id": gid(f"student-{n}"), "ReferenceId": f"LD-{n}", "Email": f"s{n}@example.org",
         "Role": "Student", "CenterId": gid("alfama"), "CurrentUnit": 1}
        for n in range(400)
    ]  # fmt: skip
    encounters = [
        {"Id": gid(f"encounter-{n}"), "CenterId": gid("alfama"), "UnitNumber": 1,
         "DateTime": at(1 + n / 100), "EndDate": at(1 + n / 100, 60), "IsOnline": False,
         "Capacity": 8}
        for n in range(500)
    ]  # fmt: skip
    bookings = [
        {"EncounterId": encounter["Id"], "UserId": student["Id"]}
        for encounter in encounters
        for student in students
    ][: 200_000 - 1 - len(students) - len(encounters)]
    bookings[-1]["Cancelled"] = "no"
    document = {"centers": valid_document()["centers"][:1], "users": students,
                "encounters": encounters, "bookings": bookings}  # fmt: skip
    before = table_snapshot(engine)
    began = time.perf_counter()

    result = load(app, tmp_path, document)

    elapsed = time.perf_counter() - began
    last = len(bookings) - 1
    assert result.exit_code == 1
    # Progress lines (one every 5 s) may come first.
    assert result.stderr[result.stderr.index("Error: ") :].splitlines()[1:] == [
        f"  bookings[{last}] (EncounterId {bookings[-1]['EncounterId']}, "
        f"UserId {bookings[-1]['UserId']}): Cancelled: Not a valid boolean (true or false)."
    ]
    assert table_snapshot(engine) == before
    assert elapsed < 60, f"validating 200,000 records took {elapsed:.1f} s"


def test_database_failure_mid_write_undoes_everything(
    app: Flask, engine: Engine, dataset: Dataset, tmp_path: Path
) -> None:
    """A write the checks cannot foresee (a trigger here) fails: earlier writes are undone too."""
    before = table_snapshot(engine)
    with engine.begin() as connection:
        for statement in TRIGGER[backend_name()]["create"]:
            connection.execute(text(statement))
    try:
        result = load(app, tmp_path, valid_document())
    finally:
        with engine.begin() as connection:
            for statement in TRIGGER[backend_name()]["drop"]:
                connection.execute(text(statement))

    assert result.exit_code == 1
    assert "the database failed, so everything was undone: bookings are closed" in result.stderr
    assert table_snapshot(engine) == before


TRIGGER = {
    "sqlite": {
        "create": [
            "CREATE TRIGGER refuse_bookings BEFORE INSERT ON bookings"
            " BEGIN SELECT RAISE(ABORT, 'bookings are closed'); END"
        ],
        "drop": ["DROP TRIGGER refuse_bookings"],
    },
    "postgresql": {
        "create": [
            "CREATE FUNCTION refuse_bookings() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'bookings are closed'; END $$",
            "CREATE TRIGGER refuse_bookings BEFORE INSERT ON bookings"
            " FOR EACH ROW EXECUTE FUNCTION refuse_bookings()",
        ],
        "drop": ["DROP TRIGGER refuse_bookings ON bookings", "DROP FUNCTION refuse_bookings()"],
    },
}
