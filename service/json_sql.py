"""The answer's JSON written by PostgreSQL, generated from the schema that defines it.

`row_json_sql(schema, columns)` reads the schema's declared fields (key, attribute, type), as
`representations.compile_json` does, and returns one SQL expression that writes, for a row, the
same JSON object as the app's encoder writes for `schema.dump(row)`: the same keys in the same
order, compact, strings escaped as orjson escapes them (`to_json`), UUIDs as `str(uuid)`, UTC
datetimes as `datetime.isoformat()` (`+00:00`, microseconds only when there are some), whole
numbers and booleans as JSON writes them, NULL as `null`. `columns` gives the SQL of each
attribute: a column, or an expression for a computed one. A field of a type it does not know, or
a key that is not a plain name, makes it refuse (`TypeError`) rather than guess.
tests/test_json_sql.py holds the bytes equal to marshmallow's dump and the encoder for arbitrary
rows. `json_array_sql` aggregates the rows of a subquery into the answer's array.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from marshmallow import Schema, fields

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def row_json_sql(schema_class: type[Schema], columns: Mapping[str, str]) -> str:
    """One SQL text expression: the JSON object of a row, as `schema_class().dump` gives it."""
    schema = schema_class()
    if any(schema._hooks[tag] for tag in schema._hooks):
        raise TypeError(f"{schema_class.__name__} has processing hooks: no SQL for its JSON")
    parts: list[str] = []
    for number, (name, field) in enumerate(schema.dump_fields.items()):
        key = name if field.data_key is None else field.data_key
        if not _PLAIN_KEY.fullmatch(key):
            raise TypeError(f"field {name!r}: key {key!r} is not a plain name")
        attribute = field.attribute or name
        if attribute not in columns:
            raise TypeError(f"field {name!r}: no SQL for attribute {attribute!r}")
        value = _value(name, field)(columns[attribute])
        parts.append(f"'{'{' if number == 0 else ','}\"{key}\":'")
        parts.append(f"coalesce({value}, 'null')")
    return f"({' || '.join(parts)} || '}}')"


def json_array_sql(row: str, order_by: str) -> str:
    """The JSON array of every row's `row` (in `order_by`), `[]` when there is none."""
    return f"'[' || coalesce(string_agg({row}, ',' ORDER BY {order_by}), '') || ']'"


def _value(name: str, field: fields.Field) -> Callable[[str], str]:
    """The SQL of a value's JSON, from the SQL of the value."""
    kind = type(field)  # exactly: a subclass may serialize otherwise
    if kind is fields.Integer and isinstance(field, fields.Integer) and not field.as_string:
        return lambda sql: f"({sql})::bigint::text"
    if kind is fields.UUID:
        return lambda sql: f"('\"' || ({sql})::text || '\"')"
    if kind is fields.String:
        return lambda sql: f"to_json(({sql})::text)::text"
    if kind is fields.Boolean:
        # A boolean column: marshmallow's truthy and falsy sets only matter for other values.
        return lambda sql: f"({sql})::boolean::text"
    if kind is fields.DateTime and isinstance(field, fields.DateTime) and _iso(field):
        return _iso_utc
    raise TypeError(f"field {name!r} ({kind.__name__}) has no SQL for its JSON")


def _iso(field: fields.DateTime) -> bool:
    return (field.format or field.DEFAULT_FORMAT) == "iso"


def _iso_utc(sql: str) -> str:
    """`datetime.isoformat()` of a timestamptz in UTC: `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`.

    PostgreSQL's text of a timestamp drops the fraction's trailing zeros (`.12`), Python writes
    six digits (`.120000`) or none: a time with a fraction is padded to 26 characters. A whole
    second (every time of a real timetable) is tested with `date_trunc` and written as it is:
    a third of the PostgreSQL CPU of the former test of the fraction and padding of every time.
    """
    text = f"(({sql}) AT TIME ZONE 'UTC')::text"
    whole = f"date_trunc('second', {sql}) = ({sql})"
    iso = f"CASE WHEN {whole} THEN {text} ELSE rpad({text}, 26, '0') END"
    return f"('\"' || replace({iso}, ' ', 'T') || '+00:00\"')"
