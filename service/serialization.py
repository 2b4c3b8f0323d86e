"""A compiled JSON body for a marshmallow schema: the schema's own output, built from its fields.

`EncounterSchema` stays the one definition of the wire format. `compile_json` reads its declared
fields (key, attribute, type) once and returns a function that writes, for a list of objects,
the same JSON bytes as the app's JSON provider writes for `Schema(many=True).dump(objects)`:
same keys in the same order, same values, without marshmallow's per-field machinery for every
object. UUIDs and UTC datetimes go to orjson as they are (it writes `str(uuid)` and
`datetime.isoformat()` in C); anything else gets the conversion marshmallow itself applies.
A field of a type or with an option it does not know makes it refuse (`TypeError`) rather than
guess; tests/test_performance_contract.py proves the bytes equal over random data.
"""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import orjson
from marshmallow import Schema, fields, utils

JsonBody = Callable[[Iterable[Any]], bytes]
# No passthrough: orjson writes the UUIDs and datetimes the converters leave to it.
_ORJSON_OPTIONS = 0


def compile_json(schema_class: type[Schema]) -> JsonBody:
    """`objects` -> the JSON of `schema_class(many=True).dump(objects)`, as UTF-8 bytes."""
    schema = schema_class()
    if any(schema._hooks[tag] for tag in schema._hooks):
        raise TypeError(f"{schema_class.__name__} has processing hooks: no compiled dump")
    keys: list[str] = []
    attributes: list[str] = []
    converters: list[Callable[[Any], Any]] = []
    natives: list[type] = []
    for name, field in schema.dump_fields.items():
        keys.append(field.data_key or name)
        attributes.append(field.attribute or name)
        native, converter = _conversion(name, field)
        natives.append(native)
        converters.append(converter)
    # The common case costs no call per field: when every value is of its field's native type
    # (and every datetime is in UTC), orjson writes the values as they are. One attrgetter reads
    # them all, the datetimes' tzinfo too; a trailing __class__ keeps it a tuple for one field.
    zones = [f"{a}.tzinfo" for a, n in zip(attributes, natives, strict=True) if n is dt.datetime]
    read_all = operator.attrgetter(*attributes, *zones, "__class__")
    expected = (*natives, *(type(dt.UTC) for _ in zones))
    utc = (dt.UTC,) * len(zones)
    count = len(keys)
    read: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*attributes, "__class__")
    call = operator.call

    def row(obj: Any) -> dict[str, Any]:
        try:
            values = read_all(obj)
        except AttributeError:  # a None datetime has no tzinfo
            values = None
        if (
            values is not None
            and tuple(map(type, values[:-1])) == expected
            and values[count:-1] == utc
        ):
            return dict(zip(keys, values, strict=False))  # stops at the last key
        return dict(zip(keys, map(call, converters, read(obj)[:-1]), strict=True))

    def json_body(objects: Iterable[Any]) -> bytes:
        return orjson.dumps([row(obj) for obj in objects], option=_ORJSON_OPTIONS)

    return json_body


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
