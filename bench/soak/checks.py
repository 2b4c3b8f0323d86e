"""How the soak tells a right answer from a wrong one: checks over a response and its body."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

# A check returns what is wrong with the answer, or None when it is right.
Check = Callable[[http.client.HTTPResponse, bytes], str | None]
NOT_FOUND = "No user with that identifier is visible to you."
PROBLEM = "application/problem+json"


def json_equals(expected: Any) -> Check:
    """A check: the body is this JSON, served as application/json."""

    def check(response: http.client.HTTPResponse, body: bytes) -> str | None:
        if not (response.getheader("Content-Type") or "").startswith("application/json"):
            return f"content type {response.getheader('Content-Type')}"
        if json.loads(body) != expected:
            return f"wrong list: {body[:200]!r}"
        return None

    return check


def problem(status: int, *, detail: str | None = None, field: str | None = None) -> Any:
    """A check: a problem body with this status (and this detail, or an error on this field)."""

    def check(response: http.client.HTTPResponse, body: bytes) -> str | None:
        if response.getheader("Content-Type") != PROBLEM:
            return f"content type {response.getheader('Content-Type')}"
        document = json.loads(body)
        if document.get("status") != status or not document.get("request_id"):
            return f"problem body {document}"
        if detail is not None and document.get("detail") != detail:
            return f"detail {document.get('detail')!r}"
        if field is not None and field not in document.get("errors", {}):
            return f"errors {document.get('errors')}"
        return None

    return check
