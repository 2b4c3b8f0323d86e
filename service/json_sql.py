"""The answer's JSON written by PostgreSQL, generated from the schema that defines it.

`row_json_sql(schema, columns)` reads the schema's declared fields (key, attribute, type), as
`representations.compile_json` does, and returns one SQL expression that writes, for a row, the
same JSON object as the app's encoder writes for `schema.dump(row)`: the same keys in the same
order, compact, strings escaped as orjson escapes them (`to_json`), UUIDs as `str(uuid)`, UTC
datetimes as `datetime.isoformat()` (`+00:00`, microseconds only when there are some), whole
numbers and booleans as JSON writes them, NULL as `null`. `columns` gives the SQL of each
attribute: a column, or an expression for a computed one. A field of a type it does not know, or
a key that is not a plain name, makes it refuse (`TypeError`) rather than guess.

`members_sql(schema, columns, attributes)` writes a run of consecutive fields alone (`"Key":value`
pairs, comma-separated, no braces): what a generated column stores for the fields a table holds
(migration 0005), so that a query writes only the members that depend on it. `row_json_sql`'s
`stored` then names the SQL that holds each such run. Every expression is independent of the
session's settings (no `DateStyle`, no time zone): a generated column may only hold such.
tests/test_json_sql.py holds the bytes equal to marshmallow's dump and the encoder for arbitrary
rows, stored runs included. `json_array_sql` aggregates the rows of a subquery into the array.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

from marshmallow import Schema, fields

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Run = tuple[str, ...]  # the attributes of consecutive fields, in the schema's order
_COMMA = " || ',' || "


def row_json_sql(
    schema_class: type[Schema], columns: Mapping[str, str], stored: Mapping[Run, str] | None = None
) -> str:
    """One SQL text expression: the JSON object of a row, as `schema_class().dump` gives it.

    `stored` maps runs of consecutive fields to the SQL of their members written beforehand (a
    generated column holding `members_sql` of them); their attributes need no SQL in `columns`.
    """
    members = _members(schema_class)
    runs = dict(stored or {})
    if () in runs:
        raise TypeError("an empty stored run holds no fields")
    parts: list[str] = []
    position = 0
    while position < len(members):
        run = next(
            (r for r in runs if r == _attributes(members[position : position + len(r)])), None
        )
        if run is not None:
            parts.append(runs.pop(run))
            position += len(run)
            continue
        parts.append(_member(members[position], columns))
        position += 1
    if runs:
        raise TypeError(f"stored runs {sorted(runs)} are not consecutive fields of the schema")
    return f"('{{' || {_COMMA.join(parts)} || '}}')"


def members_sql(
    schema_class: type[Schema], columns: Mapping[str, str], attributes: Collection[str]
) -> str:
    """The SQL of the members (`"Key":value,...`) of the fields of `attributes`, consecutive."""
    every = _members(schema_class)
    positions = [n for n, member in enumerate(every) if member[1] in attributes]
    members = [every[n] for n in positions]
    first = positions[0] if positions else 0
    consecutive = bool(positions) and positions == list(range(first, first + len(positions)))
    if not consecutive or set(_attributes(members)) != set(attributes):
        raise TypeError(f"{sorted(attributes)} are not consecutive fields of the schema")
    return f"({_COMMA.join(_member(m, columns) for m in members)})"


def json_array_sql(row: str, order_by: str) -> str:
    """The JSON array of every row's `row` (in `order_by`), `[]` when there is none."""
    return f"'[' || coalesce(string_agg({row}, ',' ORDER BY {order_by}), '') || ']'"


_Member = tuple[str, str, Callable[[str], str]]  # key, attribute, the SQL of the value's JSON


def _members(schema_class: type[Schema]) -> list[_Member]:
    schema = schema_class()
    if any(schema._hooks[tag] for tag in schema._hooks):
        raise TypeError(f"{schema_class.__name__} has processing hooks: no SQL for its JSON")
    members = []
    for name, field in schema.dump_fields.items():
        key = name if field.data_key is None else field.data_key
        if not _PLAIN_KEY.fullmatch(key):
            raise TypeError(f"field {name!r}: key {key!r} is not a plain name")
        members.append((key, field.attribute or name, _value(name, field)))
    return members


def _attributes(members: list[_Member]) -> Run:
    return tuple(attribute for _, attribute, _ in members)


def _member(member: _Member, columns: Mapping[str, str]) -> str:
    key, attribute, value = member
    if attribute not in columns:
        raise TypeError(f"field {key!r}: no SQL for attribute {attribute!r}")
    return f"'\"{key}\":' || coalesce({value(columns[attribute])}, 'null')"


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


_ISO_SECONDS = 'YYYY-MM-DD"T"HH24:MI:SS'


def _iso_utc(sql: str) -> str:
    """`datetime.isoformat()` of a timestamptz in UTC: `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`.

    Python writes six fraction digits or none: a whole second (every time of a real timetable,
    tested with `date_trunc`) without, any other with `.US`. `to_char` with a format of digits
    only, unlike a timestamp's text, does not depend on the session's `DateStyle`.
    """
    utc = f"(({sql}) AT TIME ZONE 'UTC')"
    whole = f"date_trunc('second', {sql}) = ({sql})"
    text = (
        f"CASE WHEN {whole} THEN to_char({utc}, '{_ISO_SECONDS}')"
        f" ELSE to_char({utc}, '{_ISO_SECONDS}.US') END"
    )
    return f"('\"' || {text} || '+00:00\"')"
