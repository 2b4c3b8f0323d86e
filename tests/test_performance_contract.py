"""The performance contract: a fixed number of SQL statements, index range scans, and a compiled
JSON body proven equal to the schema's own output.

- (i) A request makes at most two SQL statements (resolver, list), and the same number for an
  answer of one encounter as for hundreds, for a student and a staff member, by any path. On
  PostgreSQL a student's list is read in the resolver's statement: one statement.
- (ii) `service.representations.compile_json(EncounterSchema, AvailableEncounter)` writes exactly
  the bytes the app's JSON provider writes for `EncounterSchema(many=True).dump(...)`, over
  random rows.
- (iii) Each statement reads encounters, bookings and users through an index condition, never a
  full scan (PostgreSQL: EXPLAIN with seq scans discouraged; SQLite: EXPLAIN QUERY PLAN).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from schemas.encounters import EncounterSchema
from service.db import db
from service.encounters import AvailableEncounter
from service.models import INT32_MAX, Booking, Encounter
from service.representations import OrjsonProvider, compile_json
from tests.database import backend_name
from tests.dataset import BASE, Dataset
from tests.tokens import Tokens

MANY = 300
# (path, token subject, role); each target but the last is a student.
CASES = {
    "student, me": ("/users/me/encounters", "ST-000123", "Student"),
    "student, by reference": ("/users/ST-000123/encounters", "ST-000123", "Student"),
    "staff, a student of theirs": ("/users/ST-000123/encounters", "SM-1", "StaffMember"),
    "staff, me": ("/users/me/encounters", "SM-1", "StaffMember"),
}
# A short answer: the hour of lis_booked (BASE + 1 day; a student's only one, a staff member's 3).
ONE = {
    "from": (BASE + timedelta(hours=23)).isoformat(),
    "to": (BASE + timedelta(hours=25)).isoformat(),
}
HUNDREDS = {"from": BASE.isoformat(), "to": (BASE + timedelta(days=14)).isoformat()}


def expected_statements(case: str) -> int:
    """On PostgreSQL the default resolver reads a student's list along: one round trip."""
    student_target = CASES[case][0] != "/users/me/encounters" or CASES[case][2] == "Student"
    return 1 if student_target and backend_name() == "postgresql" else 2


@dataclass
class Statement:
    """One statement as the driver received it."""

    text: str
    parameters: Any


@pytest.fixture
def statements(app: Flask) -> Iterator[list[Statement]]:
    """Every statement the app's own engine sends while the test runs."""
    seen: list[Statement] = []

    def record(_conn: Any, _cursor: Any, text: str, parameters: Any, *_args: Any) -> None:
        seen.append(Statement(text, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def crowded(dataset: Dataset, engine: Engine) -> Dataset:
    """The known dataset plus MANY Lisbon unit-3 encounters in the window, a third booked."""
    with Session(engine) as session:
        for number in range(MANY):
            encounter_id = uuid.uuid5(uuid.NAMESPACE_URL, f"crowd/{number}")
            starts = BASE + timedelta(days=5, minutes=10 * number)
            session.add(
                Encounter(
                    id=encounter_id,
                    center_id=dataset["lisbon"],
                    unit_number=3,
                    starts_at=starts,
                    ends_at=starts + timedelta(minutes=50),
                    is_online=number % 5 == 0,
                    capacity=2,
                )
            )
            session.flush()
            if number % 3 == 0:
                session.add(Booking(encounter_id=encounter_id, user_id=dataset["ana"]))
        session.commit()
    return dataset


@pytest.mark.parametrize("case", CASES)
def test_a_request_makes_the_same_two_statements_whatever_the_answers_length(
    case: str, client: FlaskClient, crowded: Dataset, tokens: Tokens, statements: list[Statement]
) -> None:
    path, subject, role = CASES[case]
    counts = {}
    for name, window in (("one", ONE), ("hundreds", HUNDREDS)):
        statements.clear()
        response = client.get(path, headers=tokens.header(subject, role), query_string=window)
        assert response.status_code == 200, response.get_data(as_text=True)
        counts[name] = (len(statements), len(response.get_json()))
    assert 1 <= counts["one"][1] <= 3  # staff see every unit of that hour: up to three
    assert counts["hundreds"][1] > MANY
    assert counts["one"][0] == counts["hundreds"][0] == expected_statements(case), counts


def test_an_answer_outside_the_window_still_costs_the_same_statements(
    client: FlaskClient, crowded: Dataset, tokens: Tokens, statements: list[Statement]
) -> None:
    window = {"from": "2001-01-01", "to": "2001-01-15"}
    response = client.get("/users/me/encounters", headers=tokens.header(), query_string=window)
    assert response.status_code == 200 and response.get_json() == []
    assert len(statements) == expected_statements("student, me")


# --- (ii) the compiled body is the schema's own output --------------------------------------

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# As the app reads them: aware, in UTC (models.UTCDateTime), microseconds and all.
utc_instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
names = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)


@st.composite
def encounters(draw: st.DrawFn, *, as_read: bool = True) -> AvailableEncounter:
    """An encounter as the list query returns it (or, with as_read False, of looser types)."""
    starts = draw(utc_instants)
    length = draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
    ends = min(starts + length, datetime(9999, 12, 31, tzinfo=UTC))
    values: dict[str, Any] = {
        "unit_number": draw(st.integers(min_value=1, max_value=INT32_MAX)),
        "id": draw(st.uuids()),
        "starts_at": starts,
        "ends_at": ends,
        "status": draw(st.sampled_from(["Available", "Booked", "Full"])),
        "is_online": draw(st.booleans()),
        "center_id": draw(st.uuids()),
        "center_name": draw(names),
        "center_reference_id": draw(names),
    }
    if not as_read:
        # What the schema also accepts: other offsets, string ids, integer flags.
        offset = draw(offsets)
        values["starts_at"] = draw(st.sampled_from([starts, starts.astimezone(offset)]))
        values["ends_at"] = draw(st.sampled_from([ends, ends.astimezone(offset)]))
        values["id"] = draw(st.sampled_from([values["id"], str(values["id"]).upper()]))
        values["is_online"] = draw(st.sampled_from([values["is_online"], 0, 1]))
    return AvailableEncounter(**values)


PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_COMPILED = compile_json(EncounterSchema, AvailableEncounter)
_SCHEMA = EncounterSchema(many=True)
_PROVIDER = OrjsonProvider(Flask(__name__))


def _schema_body(objects: list[AvailableEncounter]) -> bytes:
    return _PROVIDER.dumps_bytes(_SCHEMA.dump(objects))


@PROPERTY_SETTINGS
@given(objects=st.lists(encounters(), max_size=30))
def test_the_compiled_body_is_byte_equal_to_the_schemas_dump(
    objects: list[AvailableEncounter],
) -> None:
    body = _COMPILED(objects)
    assert body == _schema_body(objects)
    # And the same JSON values Python's own json module makes of the schema's dump.
    assert json.loads(body) == json.loads(json.dumps(_SCHEMA.dump(objects)))


@PROPERTY_SETTINGS
@given(objects=st.lists(encounters(as_read=False), max_size=10))
def test_values_of_other_types_take_the_schemas_own_conversions(
    objects: list[AvailableEncounter],
) -> None:
    assert _COMPILED(objects) == _schema_body(objects)


def test_key_order_is_the_schemas() -> None:
    moment = datetime(2026, 12, 1, 18, 0, 0, 123456, tzinfo=UTC)
    encounter = AvailableEncounter(
        3, uuid.uuid4(), moment, moment + timedelta(minutes=75), "Full", True,
        uuid.uuid4(), "Lisboa — Baixa", "C-001",
    )  # fmt: skip
    (item,) = json.loads(_COMPILED([encounter]))
    assert list(item) == [
        field.data_key or name for name, field in EncounterSchema().fields.items()
    ]
    assert item["DateTime"] == "2026-12-01T18:00:00.123456+00:00" and item["Duration"] == 75


def test_a_schema_it_cannot_compile_is_refused() -> None:
    from typing import NamedTuple

    from marshmallow import Schema, fields

    class Priced(Schema):
        price = fields.Decimal()

    class PricedRow(NamedTuple):
        price: Any

    with pytest.raises(TypeError, match="price"):
        compile_json(Priced, PricedRow)


def test_a_field_the_row_does_not_hold_is_refused() -> None:
    from typing import NamedTuple

    class Partial(NamedTuple):
        unit_number: int

    with pytest.raises(TypeError, match="'Id'"):
        compile_json(EncounterSchema, Partial)


@PROPERTY_SETTINGS
@given(
    keys=st.lists(st.text(max_size=12), min_size=2, max_size=2, unique=True),
    values=st.tuples(st.integers(-(2**63), 2**63 - 2), st.text() | st.none()),
)
def test_any_key_a_schema_declares_is_written_as_the_schema_writes_it(
    keys: list[str], values: tuple[int, str | None]
) -> None:
    """The row function is written out from the schema: keys with quotes, backslashes, line
    breaks or braces are data in it, never code, and come out as the schema's own dump."""
    from typing import NamedTuple

    from marshmallow import Schema, fields

    class Odd(Schema):
        number = fields.Integer(data_key=keys[0])
        label = fields.String(data_key=keys[1])

    class OddRow(NamedTuple):
        number: int
        label: str | None

    rows = [OddRow(*values), OddRow(values[0] + 1, "x")]
    assert compile_json(Odd, OddRow)(rows) == _PROVIDER.dumps_bytes(Odd(many=True).dump(rows))


# --- (iii) every statement is index-backed --------------------------------------------------

SCANNED_TABLES = ("encounters", "bookings", "users")


def _postgres_full_scans(connection: Any, statement: Statement) -> list[str]:
    cursor = connection.cursor()
    try:
        # On a small table a sequential scan is cheaper and the planner would rightly take it;
        # discouraged, it must still find an index condition for each of these tables.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement.text, statement.parameters)
        (plan,) = cursor.fetchone()
    finally:
        cursor.execute("RESET enable_seqscan")
        cursor.close()
    problems: list[str] = []
    conditions: list[str] = []

    def visit(node: dict[str, Any]) -> None:
        relation = node.get("Relation Name")
        if "Index Cond" in node:
            conditions.append(node["Index Cond"])
        if relation in SCANNED_TABLES:
            indexed = node["Node Type"] in ("Index Scan", "Index Only Scan") and (
                "Index Cond" in node
            )
            bitmap = node["Node Type"] == "Bitmap Heap Scan"
            if not (indexed or bitmap):
                problems.append(f"{node['Node Type']} on {relation}")
        if node["Node Type"] == "Bitmap Index Scan" and "Index Cond" not in node:
            problems.append(f"Bitmap Index Scan without a condition on {node['Index Name']}")
        for child in node.get("Plans", []):
            visit(child)

    visit(plan[0]["Plan"])
    if not conditions:
        problems.append("no index condition at all")
    return problems


def _sqlite_full_scans(connection: Any, statement: Statement) -> list[str]:
    cursor = connection.cursor()
    try:
        cursor.execute("EXPLAIN QUERY PLAN " + statement.text, statement.parameters)
        details = [row[-1] for row in cursor.fetchall()]
    finally:
        cursor.close()
    tables = "|".join(SCANNED_TABLES)
    problems = [d for d in details if re.match(rf"SCAN ({tables})\b", d)]
    if not any(re.match(rf"SEARCH ({tables}) USING", d) for d in details):
        problems.append(f"no index search at all: {details}")
    return problems


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("query", [{}, {"online": "true"}, {"online": "false"}, {"unit": "3"}])
def test_every_statement_reads_through_an_index(
    case: str,
    query: dict[str, str],
    app: Flask,
    client: FlaskClient,
    crowded: Dataset,
    tokens: Tokens,
    statements: list[Statement],
) -> None:
    path, subject, role = CASES[case]
    response = client.get(
        path, headers=tokens.header(subject, role), query_string={**HUNDREDS, **query}
    )
    assert response.status_code == 200
    assert len(statements) == expected_statements(case)
    full_scans = _postgres_full_scans if backend_name() == "postgresql" else _sqlite_full_scans
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            for statement in statements:
                assert full_scans(raw.driver_connection, statement) == [], statement.text
        finally:
            raw.close()
