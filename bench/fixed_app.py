"""The benchmark's ceiling: a fixed 20-item body of the endpoint's shape, on the same stack.

`gunicorn -c gunicorn.conf.py bench.fixed_app:app` (benchmark only; not a production route).
Flask with the service's own request ids, JSON access log and metrics middleware, so the only
difference from the real endpoint is the work of the route itself: no token check, no directory
lookup, no SQL, no serialisation (the body is encoded once at import).
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask, Response, request

from service.ops.logs import init_access_log
from service.ops.metrics import init_metrics
from service.ops.request_ids import init_request_ids

ITEMS = 20
# `?items=N` asks for a fixed body of N items instead (the benchmark's same-bytes ceiling).
ITEMS_PARAMETER = "items"
FIXED_ROUTE = "/users/<path:userIdentifier>/encounters"


def fixed_items(count: int = ITEMS) -> list[dict[str, object]]:
    """`count` encounters in the wire format (schemas/encounters.py), the same every time."""
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    center = uuid.UUID(int=1, version=4)
    return [
        {
            "UnitNumber": n % 20 + 1,
            "Id": str(uuid.UUID(int=1000 + n, version=4)),
            "DateTime": (start + timedelta(minutes=30 * n)).isoformat(),
            "EndDate": (start + timedelta(minutes=30 * n + 60)).isoformat(),
            "Duration": 60,
            "Status": ("Available", "Booked", "Full")[n % 3],
            "IsOnline": n % 7 == 0,
            "CenterId": str(center),
            "CenterName": "Lisbon Downtown",
            "CenterReferenceId": "C-001",
        }
        for n in range(count)
    ]


@functools.cache
def fixed_body(count: int = ITEMS) -> bytes:
    """The compact JSON of `fixed_items(count)`, encoded once per count."""
    return json.dumps(fixed_items(count), separators=(",", ":")).encode()


BODY = fixed_body()


def create_fixed_app() -> Flask:
    """The ceiling app: the service's middleware around a route that returns BODY."""
    app = Flask(__name__, static_folder=None)
    init_request_ids(app)
    init_access_log(app)
    init_metrics(app)

    @app.get(FIXED_ROUTE)
    def fixed(userIdentifier: str) -> Response:
        """The same 20 items (or `?items=N`) whoever asks."""
        count = request.args.get(ITEMS_PARAMETER, ITEMS, type=int)
        body = BODY if count == ITEMS else fixed_body(max(0, min(count, 10_000)))
        return Response(body, content_type="application/json; charset=utf-8")

    @app.get("/health/ready")
    def ready() -> dict[str, str]:
        """Ready as soon as it is up (there is no database)."""
        return {"status": "ok"}

    return app


app = create_fixed_app()
