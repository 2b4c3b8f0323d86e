"""The scale check's data and requests: a small network for `load-data`, and the two mixes."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.load import Line
from bench.mixes import ITEMS, fitted, sample_users
from service.config import Settings
from service.tokens import mint_token
from tests.live import Gunicorn


def import_document(start: datetime) -> dict[str, Any]:
    """A small network of its own for `load-data`: one center, a student, a staff member."""
    center, student, staff = (
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"scale/{name}")) for name in ("center", "st", "sm")
    )
    encounters = []
    for number in range(40):
        begins = start + timedelta(days=number // 4, hours=8 + 2 * (number % 4))
        encounters.append({
            "Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"scale/encounter/{number}")),
            "CenterId": center, "UnitNumber": 1 + number % 2,
            "DateTime": begins.isoformat(), "EndDate": (begins + timedelta(hours=1)).isoformat(),
            "IsOnline": number % 5 == 0, "Capacity": 6, "Cancelled": False,
        })  # fmt: skip
    return {
        "centers": [{"Id": center, "ReferenceId": "C-SCALE", "Name": "Scale Check"}],
        "users": [
            {"Id": student, "ReferenceId": "ST-SCALE", "Email": "st.scale@example.com",
             "Role": "Student", "CenterId": center, "CurrentUnit": 1},
            {"Id": staff, "ReferenceId": "SM-SCALE", "Email": "sm.scale@example.com",
             "Role": "StaffMember", "CenterIds": [center]},
        ],
        "encounters": encounters,
        "bookings": [{"EncounterId": encounters[0]["Id"], "UserId": student, "Cancelled": False}],
    }  # fmt: skip


def minter(secret: str) -> Callable[[str, str], str]:
    """token(subject, role): an hour's token signed with the deployment's HMAC `secret`."""
    settings = Settings.from_mapping({"JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256"})
    return lambda subject, role: mint_token(settings, subject, role, 3600)


def request_lines(url: str, secret: str, direct: Gunicorn) -> tuple[list[Line], list[Line]]:
    """(a)'s requests (both roles, three windows each) and (b)-(e)'s 20-item mix."""
    token = minter(secret)
    students, pairs = sample_users(url, 50, seed=7)
    callers = [("/users/me/encounters", token(s, "Student")) for s in students]
    callers += [(f"/users/{st}/encounters", token(sm, "StaffMember")) for sm, st in pairs]
    callers += [
        ("/users/me/encounters", token("ST-SCALE", "Student")),
        ("/users/ST-SCALE/encounters", token("SM-SCALE", "StaffMember")),
        ("/users/me/encounters", token("SM-SCALE", "StaffMember")),
    ]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    windows = [
        "",
        "?" + urlencode({"from": _day(today, 2), "to": _day(today, 9)}),
        "?" + urlencode({"from": _day(today, 5)[:10], "online": "true"}),
    ]
    identical = [Line(path + window, tok) for path, tok in callers for window in windows]
    rng = random.Random(7)
    mix = [
        fitted(direct, path, tok, today + timedelta(days=rng.randint(1, 6), hours=8), ITEMS)
        for path, tok in callers
    ]
    return identical, mix


def _day(today: datetime, days: int) -> str:
    return (today + timedelta(days=days)).isoformat()
