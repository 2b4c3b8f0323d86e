"""The JSON answers: media types and caching headers (README: "The endpoint") and the JSON encoder.

Flask's JSON provider runs on orjson: the same JSON as Flask's default, several times faster.
orjson writes compact UTF-8 (no spaces, no `\\u` escapes: the same JSON values, fewer bytes) and
keeps insertion order (keys are sorted only when `sort_keys` is set). Types orjson leaves to
`default` (dates, dataclasses, `__html__`, decimals) get exactly Flask's treatment; what orjson
cannot write at all (an integer over 64 bits, `cls=`, `separators=`) falls back to Flask's own.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
from flask import current_app, request
from flask.json.provider import JSONProvider, _default
from werkzeug import Response
from werkzeug.exceptions import NotAcceptable

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
    response = current_app.response_class(body, mimetype=mimetype)
    response.content_type = f"{mimetype}; charset=utf-8"
    response.set_etag(_etag(mimetype, body))
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.update(("Authorization", "Accept"))
    return response.make_conditional(request)


def _etag(mimetype: str, body: bytes) -> str:
    # Strong validators differ between representations, so the media type is part of it.
    return hashlib.blake2b(mimetype.encode() + b"\0" + body, digest_size=16).hexdigest()


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
