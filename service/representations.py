"""Media types (SPEC 2.2) and caching headers (SPEC 2.4) of the JSON answers."""

from __future__ import annotations

import hashlib

from flask import current_app, request
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
