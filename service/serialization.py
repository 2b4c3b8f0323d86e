"""A compiled JSON body for a marshmallow schema: the schema's own output, built from its fields.

`EncounterSchema` stays the one definition of the wire format. `compile_json` reads its declared
fields (key, attribute, type) once, and the row type's columns and properties, and returns a
function that writes, for a list of rows, the same JSON bytes as the app's JSON provider writes
for `Schema(many=True).dump(rows)`: same keys in the same order, same values, without
marshmallow's per-field machinery for every row. A row is a NamedTuple, so each value is read by
position (one C call for all), and an attribute the row computes (a property) is computed once.
UUIDs and UTC datetimes go to orjson as they are (it writes `str(uuid)` and `datetime.isoformat()`
in C); anything else gets the conversion marshmallow itself applies. A field of a type or with an
option it does not know, or an attribute the row lacks, makes it refuse (`TypeError`) rather
than guess; tests/test_performance_contract.py proves the bytes equal over random rows.
"""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import orjson
from marshmallow import Schema, fields, utils

JsonBody = Callable[[Iterable[Any]], bytes]
# No passthrough: orjson writes the UUIDs and datetimes the converters leave to it.
_ORJSON_OPTIONS = 0


def compile_json(schema_class: type[Schema], row_type: type[tuple[Any, ...]]) -> JsonBody:
    """`rows` (of NamedTuple `row_type`) -> the JSON of `schema_class(many=True).dump(rows)`."""
    schema = schema_class()
    if any(schema._hooks[tag] for tag in schema._hooks):
        raise TypeError(f"{schema_class.__name__} has processing hooks: no compiled dump")
    columns: tuple[str, ...] = getattr(row_type, "_fields", ())
    keys: list[str] = []
    positions: list[int] = []
    computed: list[Callable[[Any], Any]] = []
    converters: list[Callable[[Any], Any]] = []
    natives: list[type] = []
    for name, field in schema.dump_fields.items():
        keys.append(field.data_key or name)
        attribute = field.attribute or name
        if attribute in columns:
            positions.append(columns.index(attribute))
        else:
            accessor = getattr(row_type, attribute, None)
            if not isinstance(accessor, property) or accessor.fget is None:
                raise TypeError(f"field {name!r}: {row_type.__name__} has no {attribute!r}")
            computed.append(accessor.fget)
            positions.append(len(columns) + len(computed) - 1)
        native, converter = _conversion(name, field)
        natives.append(native)
        converters.append(converter)
    # The common case costs no call per field: when every value is of its field's native type
    # (and every datetime is in UTC), orjson writes the values as they are.
    ordered = _picker(positions)
    zones = _picker([n for n, native in enumerate(natives) if native is dt.datetime])
    expected = tuple(natives)
    utc = tuple(dt.UTC for native in natives if native is dt.datetime)
    zone = operator.attrgetter("tzinfo")
    call = operator.call

    def row(values: tuple[Any, ...]) -> dict[str, Any]:
        if computed:
            values = values + tuple([compute(values) for compute in computed])
        picked = ordered(values)
        if tuple(map(type, picked)) == expected and tuple(map(zone, zones(picked))) == utc:
            return dict(zip(keys, picked, strict=True))
        return dict(zip(keys, map(call, converters, picked), strict=True))

    def json_body(rows: Iterable[Any]) -> bytes:
        return orjson.dumps([row(values) for values in rows], option=_ORJSON_OPTIONS)

    return json_body


def _picker(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The values at `positions`, always as a tuple (itemgetter gives a bare value for one)."""
    if len(positions) >= 2:
        return operator.itemgetter(*positions)
    if positions:
        (position,) = positions
        return lambda values: (values[position],)
    return lambda values: ()


def _conversion(name: str, field: fields.Field[Any]) -> tuple[type, Callable[[Any], Any]]:
    """The type orjson may write as is, and what marshmallow's `_serialize` makes of others."""
    kind = type(field)  # exactly: a subclass may serialize otherwise
    if kind is fields.Integer and isinstance(field, fields.Integer) and not field.as_string:
        return int, _integer
    if kind is fields.UUID:
        return uuid.UUID, _uuid
    if kind is fields.String:
        return str, _string
    if kind is fields.DateTime and isinstance(field, fields.DateTime) and _iso(field):
        return dt.datetime, _iso_datetime
    if kind is fields.Boolean:
        # Its truthy/falsy sets decide for other values; the field's own method applies them.
        return bool, partial(field._serialize, attr=name, obj=None)
    raise TypeError(f"field {name!r} ({kind.__name__}) has no compiled conversion")


def _iso(field: fields.DateTime) -> bool:
    return (field.format or field.DEFAULT_FORMAT) == "iso"


# Each: None stays None (marshmallow's rule for every field); the common type passes as is.
def _integer(value: Any) -> Any:
    return value if type(value) is int or value is None else int(value)  # Integer._format_num


def _uuid(value: Any) -> Any:
    return value if type(value) is uuid.UUID or value is None else str(value)


def _string(value: Any) -> Any:
    return value if type(value) is str or value is None else utils.ensure_text_type(value)


def _iso_datetime(value: Any) -> Any:
    if value is None or (type(value) is dt.datetime and value.tzinfo is dt.UTC):
        return value
    return value.isoformat()
