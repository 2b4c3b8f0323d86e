"""PostgreSQL writes the answer's JSON (service.json_sql): byte for byte the schema's dump.

For arbitrary rows (quotes, backslashes, control characters, non-ASCII text and emoji, names of
the longest length, every status, sub-second times from year 1 to 9999, durations of any length)
the database's bytes equal marshmallow's `EncounterSchema(many=True).dump` written by the app's
JSON encoder. The body is the same for both media types (only the ETag differs, computed from it
in Python). SQLite keeps the compiled dump (tests/test_performance_contract.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import Engine

from schemas.encounters import EncounterSchema
from service.encounters import _DURATION_SQL, AvailableEncounter
from service.json_sql import json_array_sql, row_json_sql
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
    {**{name: f"q.{name}" for name in AvailableEncounter._fields}, "duration": _DURATION_SQL},
)
_COLUMNS = ", ".join(("ord", *AvailableEncounter._fields))


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
        AvailableEncounter(
            1,
            __import__("uuid").UUID(int=0),
            datetime(1, 1, 2, tzinfo=UTC),
            datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
            "Full",
            True,
            __import__("uuid").UUID(int=2**128 - 1),
            HARD * 15,
            'ST/2026/7 "quoted" back\\slash',
        )
    ]
)
def test_the_database_writes_the_schemas_bytes(
    engine: Engine, objects: list[AvailableEncounter]
) -> None:
    assert _database_body(engine, objects) == _schema_body(objects)


def test_a_field_without_sql_is_refused() -> None:
    with pytest.raises(TypeError, match="no SQL for attribute"):
        row_json_sql(EncounterSchema, {"unit_number": "q.unit_number"})
