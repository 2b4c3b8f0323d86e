"""PostgreSQL writes the answer's JSON (service.json_sql): byte for byte the schema's dump.

For arbitrary rows (quotes, backslashes, control characters, non-ASCII text and emoji, names of
the longest length, every status, sub-second times from year 1 to 9999, durations of any length)
the database's bytes equal marshmallow's `EncounterSchema(many=True).dump` written by the app's
JSON encoder: written whole per query, and written from the members the tables store (migration
0005's generated columns, and 0006's copy of the center's members in each encounter, rows really
inserted). The body is the same for both media types (only
the ETag differs, computed from it in Python). SQLite keeps the compiled dump
(tests/test_performance_contract.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import Engine

from schemas.encounters import EncounterSchema
from service.encounters import STORED_MEMBERS, AvailableEncounter, duration_sql
from service.json_sql import json_array_sql, members_sql, row_json_sql
from service.models import INT32_MAX
from tests.database import backend_name
from tests.test_performance_contract import PROPERTY_SETTINGS, _schema_body, utc_instants

pytestmark = pytest.mark.skipif(
    backend_name() != "postgresql", reason="the database writes the body on PostgreSQL only"
)
# Any text PostgreSQL can hold (no NUL), up to the longest name the tables take.
names = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=254
)
HARD = '"\\/\b\f\n\r\t\x01\x1f\x7f\u2028\u00e9\u4e2d\U0001f600'
_TYPES = (
    "int", "int", "uuid", "timestamptz", "timestamptz", "text", "boolean", "uuid", "text", "text"
)  # fmt: skip
_ROW = row_json_sql(
    EncounterSchema,
    {
        **{name: f"q.{name}" for name in AvailableEncounter._fields},
        "duration": duration_sql("q.starts_at", "q.ends_at"),
    },
)
_COLUMNS = ", ".join(("ord", *AvailableEncounter._fields))


# The extremes a table can hold: the largest unit, a microsecond past the first day of year 1,
# the last microsecond before year 10000, the smallest and largest UUIDs, the hardest name.
EXTREMES = AvailableEncounter(
    INT32_MAX,
    __import__("uuid").UUID(int=0),
    datetime(1, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
    "Booked",
    False,
    __import__("uuid").UUID(int=2**128 - 1),
    HARD * 15,
    'ST/2026/7 "quoted" back\\slash',
)


@st.composite
def rows(draw: st.DrawFn) -> AvailableEncounter:
    """A row as the list statement could return it, durations negative and long included."""
    starts, ends = draw(utc_instants), draw(utc_instants)
    return AvailableEncounter(
        unit_number=draw(st.integers(min_value=-(2**31), max_value=INT32_MAX)),
        id=draw(st.uuids()),
        starts_at=starts,
        ends_at=draw(st.sampled_from([ends, starts + timedelta(minutes=45), starts])),
        status=draw(st.sampled_from(["Available", "Booked", "Full"])),
        is_online=draw(st.booleans()),
        center_id=draw(st.uuids()),
        center_name=draw(st.one_of(names, st.text(alphabet=HARD, max_size=254))),
        center_reference_id=draw(names),
    )


def _database_body(engine: Engine, objects: list[AvailableEncounter]) -> bytes:
    values: dict[str, Any] = {}
    # A typed row of NULLs first (dropped by the WHERE), so that no rows at all is a query too.
    tuples = [f"({', '.join(f'NULL::{kind}' for kind in _TYPES)})"]
    for number, row in enumerate(objects):
        placeholders = [f"%(v{number}_0)s::int"]
        values[f"v{number}_0"] = number
        for position, (value, kind) in enumerate(zip(row, _TYPES[1:], strict=True), 1):
            values[f"v{number}_{position}"] = value
            placeholders.append(f"%(v{number}_{position})s::{kind}")
        tuples.append(f"({', '.join(placeholders)})")
    source = f"(VALUES {', '.join(tuples)}) AS q({_COLUMNS})"
    sql = f"SELECT {json_array_sql(_ROW, 'q.ord')} FROM {source} WHERE q.ord IS NOT NULL"
    with engine.connect() as connection:
        text: str = connection.exec_driver_sql(sql, values).scalar_one()
    return text.encode()


@PROPERTY_SETTINGS
@given(objects=st.lists(rows(), max_size=8))
@example(objects=[])
@example(
    objects=[
        EXTREMES._replace(
            unit_number=1, starts_at=datetime(1, 1, 2, tzinfo=UTC), status="Full", is_online=True
        )
    ]
)
def test_the_database_writes_the_schemas_bytes(
    engine: Engine, objects: list[AvailableEncounter]
) -> None:
    assert _database_body(engine, objects) == _schema_body(objects)


# The list statement's row: the stored members of both tables around the status and IsOnline.
_STORED_ROW = row_json_sql(
    EncounterSchema,
    {"status": "q.status", "is_online": "q.is_online"},
    {STORED_MEMBERS[table][0]: f"q.{table}_json" for table in STORED_MEMBERS},
)


@st.composite
def stored_rows(draw: st.DrawFn) -> AvailableEncounter:
    """A row the tables can hold: a unit from 1, an end after the start."""
    row: AvailableEncounter = draw(rows())
    starts = min(row.starts_at, row.ends_at - timedelta(microseconds=1))
    ends = starts + draw(
        st.sampled_from([timedelta(minutes=45), row.ends_at - starts, timedelta(microseconds=1)])
    )
    if ends <= starts:
        ends = starts + timedelta(minutes=1)
    unit = draw(st.integers(min_value=1, max_value=INT32_MAX))
    return row._replace(unit_number=unit, starts_at=starts, ends_at=ends)


def _stored_body(engine: Engine, objects: list[AvailableEncounter], *session: str) -> bytes:
    """Each row inserted (its center, then the encounter) after the `session` statements, read
    back as the list statement writes it; nothing is kept (the transaction is rolled back)."""
    statuses = ["(NULL::int, NULL::uuid, NULL::text)"]
    values: dict[str, Any] = {}
    with engine.connect() as connection:
        for statement in session:
            connection.exec_driver_sql(statement)
        for number, row in enumerate(objects):
            connection.exec_driver_sql(
                "INSERT INTO centers (id, reference_id, name) VALUES (%s, %s, %s)",
                (row.center_id, row.center_reference_id, row.center_name),
            )
            connection.exec_driver_sql(
                "INSERT INTO encounters (id, center_id, unit_number, starts_at, ends_at, is_online,"
                " capacity) VALUES (%s, %s, %s, %s, %s, %s, 1)",
                (
                    row.id,
                    row.center_id,
                    row.unit_number,
                    row.starts_at,
                    row.ends_at,
                    row.is_online,
                ),
            )
            statuses.append(f"(%(o{number})s::int, %(i{number})s::uuid, %(s{number})s::text)")
            values.update({f"o{number}": number, f"i{number}": row.id, f"s{number}": row.status})
        source = (
            "(SELECT v.ord, v.status, e.is_online, e.json_members AS encounters_json,"
            " e.center_json_members AS centers_json FROM encounters e"
            f" JOIN (VALUES {', '.join(statuses)}) AS v(ord, id, status) ON v.id = e.id) AS q"
        )
        sql = f"SELECT {json_array_sql(_STORED_ROW, 'q.ord')} FROM {source}"
        text: str = connection.exec_driver_sql(sql, values).scalar_one()
        connection.rollback()
    return text.encode()


@PROPERTY_SETTINGS
@given(
    objects=st.lists(
        stored_rows(), max_size=6, unique_by=(lambda row: row.id, lambda row: row.center_id)
    )
)
@example(objects=[])
@example(objects=[EXTREMES])
def test_the_stored_members_make_the_schemas_bytes(
    engine: Engine, objects: list[AvailableEncounter]
) -> None:
    assert _stored_body(engine, objects) == _schema_body(objects)


def test_the_stored_members_are_the_same_whatever_the_session_datestyle(engine: Engine) -> None:
    row = AvailableEncounter(
        2, __import__("uuid").UUID(int=5), datetime(2026, 12, 7, 9, tzinfo=UTC),
        datetime(2026, 12, 7, 10, 30, 0, 250000, tzinfo=UTC), "Full", True,
        __import__("uuid").UUID(int=6), "Lisboa", "C-1",
    )  # fmt: skip
    for style in ("SQL, DMY", "German", "Postgres, MDY"):
        session = (f"SET LOCAL datestyle = '{style}'", "SET LOCAL TIME ZONE 'Asia/Kolkata'")
        assert _stored_body(engine, [row], *session) == _schema_body([row]), style


def test_a_stored_run_must_be_consecutive_fields() -> None:
    with pytest.raises(TypeError, match="not consecutive"):
        members_sql(EncounterSchema, {"unit_number": "u", "status": "s"}, ("unit_number", "status"))
    with pytest.raises(TypeError, match="not consecutive"):
        every = {name: name for name in (*AvailableEncounter._fields, "duration")}
        row_json_sql(EncounterSchema, every, {("id", "unit_number"): "x"})
    with pytest.raises(TypeError, match="not consecutive"):
        members_sql(EncounterSchema, {}, ())
    with pytest.raises(TypeError, match="empty stored run"):
        row_json_sql(EncounterSchema, {}, {(): "x"})


def test_a_field_without_sql_is_refused() -> None:
    with pytest.raises(TypeError, match="no SQL for attribute"):
        row_json_sql(EncounterSchema, {"unit_number": "q.unit_number"})
