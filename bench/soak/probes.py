"""The soak's request mix: every kind of caller and answer the service has, each with its check.

Four kinds: allowed (the body must be the list tests/oracle.py works out), denied, unknown and
malformed; the soak sends each kind an equal share of its requests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlencode

from bench.soak.checks import NOT_FOUND, Check, json_equals, problem
from tests.dataset import BASE
from tests.oracle import expected_encounters, visible
from tests.tokens import Tokens

TOKEN_TTL_SECONDS = 3600
WINDOW = {
    "from": (BASE - timedelta(days=5)).isoformat(),
    "to": (BASE + timedelta(days=25)).isoformat(),
}


@dataclass(frozen=True)
class Probe:
    """One request of the mix and the answer it must get."""

    kind: str  # allowed, denied, unknown or malformed
    name: str
    path: str
    headers: dict[str, str]
    status: int
    check: Check = lambda response, body: None
    method: str = "GET"


def probes(secret: str) -> list[Probe]:
    """The request mix: every kind of caller and answer the service has."""
    people = {
        "ana": ("ST-000123", "Student"),
        "bruno": ("ST/2026/7", "Student"),
        "carla": ("ST-000200", "Student"),
        "rui": ("SM-1", "StaffMember"),
        "sara": ("SM-2", "StaffMember"),
    }
    tokens = Tokens(secret, ttl=TOKEN_TTL_SECONDS)
    bearer = {name: tokens.header(*who) for name, who in people.items()}
    window = urlencode(WINDOW)
    bounds = (BASE - timedelta(days=5), BASE + timedelta(days=25))
    found: list[Probe] = []
    for caller in people:
        for target, (reference, _) in people.items():
            path = f"/users/{quote(reference, safe='')}/encounters?{window}"
            if visible(caller, target):
                kind, status, check = (
                    "allowed",
                    200,
                    json_equals(expected_encounters(target, *bounds)),
                )
            else:
                kind, status, check = "denied", 404, problem(404, detail=NOT_FOUND)
            found.append(Probe(kind, f"{caller}->{target}", path, bearer[caller], status, check))
    found += [
        Probe("allowed", "ana me unit 4", f"/users/me/encounters?{window}&unit=4", bearer["ana"],
              200, json_equals(expected_encounters("ana", *bounds, unit=4))),
        Probe("allowed", "rui online", f"/users/me/encounters?{window}&online=true", bearer["rui"],
              200, json_equals(expected_encounters("rui", *bounds, online=True))),
        Probe("allowed", "ana by email", f"/users/ana.lima%40EXAMPLE.com/encounters?{window}",
              bearer["rui"], 200, json_equals(expected_encounters("ana", *bounds))),
        Probe("allowed", "HEAD", f"/users/me/encounters?{window}", bearer["ana"], 200,
              lambda response, body: "HEAD has a body" if body else None, "HEAD"),
        Probe("unknown", "unknown reference", "/users/ST-999999/encounters", bearer["rui"], 404,
              problem(404, detail=NOT_FOUND)),
        Probe("unknown", "unknown guid", f"/users/{uuid.uuid4()}/encounters", bearer["rui"], 404,
              problem(404, detail=NOT_FOUND)),
        Probe("unknown", "unknown email", "/users/nobody%40example.com/encounters", bearer["sara"],
              404, problem(404, detail=NOT_FOUND)),
        Probe("denied", "student claims staff", "/users/me/encounters",
              tokens.header("ST-000123", "StaffMember"), 403,
              problem(403)),
        Probe("denied", "unknown subject", "/users/me/encounters",
              tokens.header("ST-404", "Student"), 403, problem(403)),
        Probe("malformed", "no token", "/users/me/encounters", {}, 401, problem(401)),
        Probe("malformed", "expired token", "/users/me/encounters",
              tokens.header("SM-1", "StaffMember", exp=1), 401,
              problem(401)),
        Probe("malformed", "alg none", "/users/me/encounters",
              {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJTTS0xIn0."}, 401,
              problem(401)),
        Probe("malformed", "wrong secret", "/users/me/encounters",
              Tokens("x" * 40).header("SM-1", "StaffMember"), 401,
              problem(401)),
        Probe("malformed", "id: no guid", "/users/id%3Anope/encounters", bearer["rui"], 400,
              problem(400, field="userIdentifier")),
        Probe("malformed", "invalid utf-8", "/users/ST%FF/encounters", bearer["rui"], 400,
              problem(400, field="userIdentifier")),
        Probe("malformed", "too long", "/users/" + "x" * 300 + "/encounters", bearer["rui"], 400,
              problem(400, field="userIdentifier")),
        Probe("malformed", "unit 0", "/users/me/encounters?unit=0", bearer["rui"], 400,
              problem(400, field="unit")),
        Probe("malformed", "naive from", "/users/me/encounters?from=2026-01-01T00:00:00",
              bearer["rui"], 400, problem(400, field="from")),
        Probe("malformed", "year 0 in UTC", "/users/me/encounters?from=0001-01-01T00:00%2B01:00",
              bearer["rui"], 400, problem(400, field="from")),
        Probe("malformed", "unit twice", "/users/me/encounters?unit=1&unit=2", bearer["rui"], 400,
              problem(400, field="unit")),
        Probe("malformed", "html only", "/users/me/encounters",
              {**bearer["rui"], "Accept": "text/html"}, 406, problem(406)),
        Probe("malformed", "POST", "/users/me/encounters", bearer["rui"], 405, problem(405),
              "POST"),
    ]  # fmt: skip
    return found
