"""Request ids: the caller's `X-Request-ID` if well-formed, else a new one, on every response."""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, g, request
from werkzeug import Response

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def init_request_ids(app: Flask) -> None:
    """Give every request an id and echo it in the response."""

    @app.before_request
    def assign_request_id() -> None:
        g.request_started = time.perf_counter()
        offered = request.headers.get(HEADER, "")
        g.request_id = offered if _WELL_FORMED.fullmatch(offered) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers[HEADER] = g.get("request_id") or uuid.uuid4().hex
        return response
