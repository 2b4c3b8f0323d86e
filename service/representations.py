"""The JSON answers: media types, caching headers, the compiled body and the JSON encoder.

Media types and caching headers: README, "The endpoint".

The compiled body. `EncounterSchema` stays the one definition of the wire format. `compile_json`
reads its declared fields (key, attribute, type) once, and the row type's columns and properties,
and returns a function that writes, for a list of rows, the same JSON bytes as the app's JSON
provider writes for `Schema(many=True).dump(rows)`: same keys in the same order, same values,
without marshmallow's per-field machinery for every row. A row is a NamedTuple: the function of
one row is written out for the schema's fields (unpack the row, compute each property once, check
each value's type, build the dict), as dataclasses writes `__init__`. UUIDs and UTC datetimes
go to orjson as they are (it writes `str(uuid)` and `datetime.isoformat()` in C); anything else
gets the conversion marshmallow itself applies. A field
of a type or with an option it does not know, or an attribute the row lacks, makes it refuse
(`TypeError`) rather than guess; tests/test_performance_contract.py proves the bytes equal over
random rows.

The encoder. Flask's JSON provider runs on orjson: the same JSON as Flask's default, several times
faster. orjson writes compact UTF-8 (no spaces, no `\\u` escapes: the same JSON values, fewer
bytes) and keeps insertion order (keys are sorted only when `sort_keys` is set). Types orjson
leaves to `default` (dates, dataclasses, `__html__`, decimals) get exactly Flask's treatment; what
orjson cannot write at all (an integer over 64 bits, `cls=`, `separators=`) falls back to Flask's
own.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import orjson
from flask import current_app, request
from flask.json.provider import JSONProvider, _default
from marshmallow import Schema, fields, utils
from werkzeug import Response
from werkzeug.datastructures import Headers
from werkzeug.exceptions import NotAcceptable
from werkzeug.http import quote_etag

JSON_TYPES = ("application/json", "text/json")
NOT_ACCEPTABLE_DETAIL = f"This resource is served as {' or '.join(JSON_TYPES)}."


def negotiate() -> str:
    """The media type to answer with, from `Accept`; 406 when it admits neither JSON type."""
    if not request.headers.get("Accept", "").strip():
        return JSON_TYPES[0]
    accept = request.accept_mimetypes
    best = accept.best_match(JSON_TYPES)
    if best is None:
        raise NotAcceptable(NOT_ACCEPTABLE_DETAIL)
    # "*/*" and "application/*" rate both alike; the original's first type wins the tie.
    if accept.quality(JSON_TYPES[0]) >= accept.quality(best):
        return JSON_TYPES[0]
    return best


def json_response(body: bytes, mimetype: str) -> Response:
    """A 200 of JSON `body` with a strong ETag, answered as 304 when `If-None-Match` matches."""
    headers = [
        ("Content-Type", f"{mimetype}; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("ETag", quote_etag(_etag(mimetype, body))),
        ("Cache-Control", "private, no-cache"),
        ("Vary", "Authorization, Accept"),
    ]
    environ = request.environ
    # Without a validator in the request a GET or HEAD is not conditional (no Last-Modified, no
    # ranges): `make_conditional` would only add the Date. Otherwise it decides, as always.
    if environ["REQUEST_METHOD"] in _SAFE and not (
        environ.get("HTTP_IF_NONE_MATCH") or environ.get("HTTP_IF_MATCH")
    ):
        headers.append(("Date", http_date()))
        return _response(body, headers)
    return _response(body, headers).make_conditional(request)


_SAFE = ("GET", "HEAD")


def _response(body: bytes, header_list: list[tuple[str, str]]) -> Response:
    # The headers in one list, in the order werkzeug's setters gave them: each `set` scans the
    # list, and together they cost more than the rest of the response. A slice assignment
    # checks each value as `add` does, without its work for other kinds of arguments.
    headers = Headers()
    headers[:] = header_list
    # Passed through: the server gets the list itself, not werkzeug's generator over it wrapped
    # in a closing iterator (nothing here needs closing). HEAD and 304 still get no body.
    response = current_app.response_class(headers=headers, direct_passthrough=True)
    response.response = [body]
    return response


def http_date() -> str:
    """`werkzeug.http.http_date()` (now, RFC 9110's IMF-fixdate), formatted once a second."""
    now = time.time()
    second = int(now)
    cached_second, date = _LAST_DATE[0]  # one tuple: a thread reads a second and its date
    # A time in a second's last millisecond may round up to the next: formatted afresh.
    if cached_second != second or now - second >= 0.999:
        date = email.utils.formatdate(now, usegmt=True)
        if now - second < 0.999:
            _LAST_DATE[0] = second, date
    return date


_LAST_DATE: list[tuple[int, str]] = [(-1, "")]


def _etag(mimetype: str, body: bytes) -> str:
    # Strong validators differ between representations, so the media type is part of it. The
    # body is hashed where it is: no copy of it with the media type in front.
    digest = hashlib.blake2b(mimetype.encode() + b"\0", digest_size=16)
    digest.update(body)
    return digest.hexdigest()


_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_ORJSON_KEYWORDS = frozenset({"indent", "sort_keys", "default"})


class OrjsonProvider(JSONProvider):
    """`app.json`: dumps and loads with orjson."""

    sort_keys = False
    mimetype = "application/json"

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize `obj` to a JSON string."""
        return self.dumps_bytes(obj, **kwargs).decode()

    def dumps_bytes(self, obj: Any, **kwargs: Any) -> bytes:
        """Serialize `obj` to UTF-8 JSON bytes (what a response body needs, without a decode)."""
        if not kwargs.keys() <= _ORJSON_KEYWORDS:
            return self._fallback(obj, **kwargs).encode()
        options = _OPTIONS
        if kwargs.get("sort_keys", self.sort_keys):
            options |= orjson.OPT_SORT_KEYS
        if kwargs.get("indent"):
            options |= orjson.OPT_INDENT_2
        try:
            return orjson.dumps(obj, default=kwargs.get("default", _default), option=options)
        except orjson.JSONEncodeError:
            return self._fallback(obj, **kwargs).encode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Deserialize JSON text or UTF-8 bytes."""
        return json.loads(s, **kwargs) if kwargs else orjson.loads(s)

    def _fallback(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", _default)
        kwargs.setdefault("sort_keys", self.sort_keys)
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(obj, **kwargs)


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
        keys.append(name if field.data_key is None else field.data_key)
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
    row = _row_function(columns, positions, computed, keys, natives, converters)

    def json_body(rows: Iterable[Any]) -> bytes:
        return orjson.dumps([row(values) for values in rows], option=_ORJSON_OPTIONS)

    return json_body


def _row_function(
    columns: Sequence[str],
    positions: Sequence[int],
    computed: Sequence[Callable[[Any], Any]],
    keys: Sequence[str],
    natives: Sequence[type],
    converters: Sequence[Callable[[Any], Any]],
) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    """The function of one row to its dict, written out for these fields (as dataclasses does).

    The common case costs no call per field: when every value is of its field's native type
    (and every datetime is in UTC), the dict takes the values as they are, and orjson writes
    them; otherwise every value gets its conversion. Written out, a row costs a third of what
    the same steps cost through map, zip and itemgetter. The source holds nothing but the
    schema's keys (as `repr` literals) and generated names.
    """
    names = [f"v{n}" for n in range(len(columns))] + [f"c{n}" for n in range(len(computed))]
    picked = [names[position] for position in positions]
    checks = []
    for n, (value, native) in enumerate(zip(picked, natives, strict=True)):
        checks.append(f"type({value}) is T{n}")
        if native is dt.datetime:
            checks.append(f"{value}.tzinfo is UTC")
    plain = ", ".join(f"{key!r}: {value}" for key, value in zip(keys, picked, strict=True))
    converted = ", ".join(
        f"{key!r}: convert{n}({value})"
        for n, (key, value) in enumerate(zip(keys, picked, strict=True))
    )
    scope: dict[str, Any] = {"UTC": dt.UTC}
    scope.update((f"T{n}", native) for n, native in enumerate(natives))
    scope.update((f"convert{n}", converter) for n, converter in enumerate(converters))
    scope.update((f"compute{n}", compute) for n, compute in enumerate(computed))
    defaults = ", ".join(f"{name}={name}" for name in scope)
    lines = [f"def row(values, *, {defaults}):"]
    if columns:
        lines.append(f"    {', '.join(names[: len(columns)])}, = values")
    lines += [f"    c{n} = compute{n}(values)" for n in range(len(computed))]
    lines += [
        f"    if {' and '.join(checks) or 'True'}:",
        f"        return {{{plain}}}",
        f"    return {{{converted}}}",
    ]
    # Generated from the schema's own fields: keys as repr() literals, every name our own.
    exec("\n".join(lines), scope)
    function: Callable[[tuple[Any, ...]], dict[str, Any]] = scope["row"]
    return function


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
