"""Liveness and readiness probes, unauthenticated."""

from __future__ import annotations

from typing import Any

import flask_smorest
from sqlalchemy import text

from service.db import db

blp = flask_smorest.Blueprint("health", __name__, url_prefix="/health", description="Probes.")

# One object, so its compiled SQL is reused (service.db keys compiled SQL by statement).
_PING = text("SELECT 1")


@blp.route("/live", methods=["GET"])
@blp.response(200, description="The process is up.")
def live() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@blp.route("/ready", methods=["GET"])
@blp.response(200, description="The database (the read replica, when set) answers.")
@blp.alt_response(503, description="The database (the read replica, when set) does not answer.")
def ready() -> dict[str, Any]:
    """The database that requests read from answers a trivial query."""
    db.read(_PING)
    return {"status": "ok"}
