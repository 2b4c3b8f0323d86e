"""Request ids: the caller's `X-Request-ID` if well-formed, else a new one, on every response."""

from __future__ import annotations

import os
import re
import time

from flask import Flask, g, request
from werkzeug import Response

HEADER = "X-Request-ID"
_ENVIRON_KEY = "HTTP_X_REQUEST_ID"  # the header as WSGI hands it over (one value, joined)
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def init_request_ids(app: Flask) -> None:
    """Give every request an id and echo it in the response."""

    @app.before_request
    def assign_request_id() -> None:
        g.request_started = time.perf_counter()
        offered = request.environ.get(_ENVIRON_KEY)
        g.request_id = offered if offered and _WELL_FORMED.fullmatch(offered) else new_id()

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers[HEADER] = g.get("request_id") or new_id()
        return response


def new_id() -> str:
    """A new request id: 32 hex digits, 128 random bits (`uuid4().hex` without its UUID object)."""
    return os.urandom(16).hex()
