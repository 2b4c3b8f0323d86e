"""The benchmark's requests: real users of both roles, their tokens, and windows fitted to a length.

Students ask for their own list (`/users/me`), staff members for a student of one of their centers;
each window starts on a random weekday morning and ends where the answer holds about ITEMS items.
Staff members' own lists of BIG_ITEMS (and, for the per-item fit, FIT_ITEMS) items are the long
answers.
"""

from __future__ import annotations

import http.client
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg

from bench.datasets import Dataset, libpq_url
from bench.load import Line, Server
from service.config import Settings
from service.tokens import mint_token

ITEMS, BIG_ITEMS = 20, 500
# Staff members' own lists of these lengths (at 1 connection) give the per-item cost: a linear
# fit of CPU per request against items; 250 items is also compared with a fixed body as long.
FIT_ITEMS = (20, 100, 250, BIG_ITEMS)
SAME_BYTES_ITEMS = 250


@dataclass
class Scenario:
    """A set of requests (one line per real user) and how many items their answers hold."""

    name: str
    lines: list[Line]
    items: list[int] = field(default_factory=list)

    def item_summary(self) -> str:
        """Mean, min and max answer length."""
        if not self.items:
            return "no answers"
        mean = sum(self.items) / len(self.items)
        return f"{mean:.1f} items per answer (min {min(self.items)}, max {max(self.items)})"


def sample_users(url: str, count: int, seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Random students with a unit, and random (staff member, student of one of their centers)."""
    with psycopg.connect(libpq_url(url)) as pg:
        pg.execute("SELECT setseed(%s)", (seed / 1000 % 1,))
        students = [
            row[0]
            for row in pg.execute(
                "SELECT reference_id FROM users WHERE role = 'Student'"
                " AND current_unit IS NOT NULL ORDER BY random() LIMIT %s",
                (count,),
            )
        ]
        pairs = pg.execute(
            "SELECT DISTINCT ON (sm.id) sm.reference_id, st.reference_id FROM"
            " (SELECT id, reference_id FROM users WHERE role = 'StaffMember'"
            "  ORDER BY random() LIMIT %s) sm"
            " JOIN staff_centers sc ON sc.user_id = sm.id"
            " JOIN users st ON st.center_id = sc.center_id AND st.role = 'Student'"
            "  AND st.current_unit IS NOT NULL"
            " ORDER BY sm.id, random()",
            (count,),
        ).fetchall()
    return students, [(staff, student) for staff, student in pairs]


def weekday_mornings(start: date, days: int, rng: random.Random, count: int) -> list[datetime]:
    """`count` random weekday 08:00 UTC instants with a week of data after them."""
    choices = [
        datetime.combine(start + timedelta(days=n), datetime.min.time(), UTC) + timedelta(hours=8)
        for n in range(1, max(2, days - 7))
        if (start + timedelta(days=n)).weekday() < 5
    ]
    return [rng.choice(choices) for _ in range(count)]


def query(starts: datetime, ends: datetime) -> str:
    """The `from`/`to` query string of a window."""
    return urlencode({"from": starts.isoformat().replace("+00:00", "Z"), "to": ends.isoformat()})


def fetch(server: Server, line: Line) -> tuple[int, list[dict[str, Any]]]:
    """One request over HTTP: its status and (for a 200) the list."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("GET", line.path, headers={"Authorization": f"Bearer {line.token}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, json.loads(body) if response.status == 200 else []


def fitted(server: Server, base: str, token: str, starts: datetime, items: int) -> Line:
    """The request of `base` whose window from `starts` holds about `items` encounters.

    The list of a day (or a week, or 31 days when shorter) is fetched once; the window ends at
    the start of the (items+1)-th encounter, so the answer holds `items` or a few more when
    several start at the same minute (the nearer of the two).
    """
    for span in (timedelta(days=1), timedelta(days=7), timedelta(days=31)):
        status, found = fetch(server, Line(f"{base}?{query(starts, starts + span)}", token))
        if status != 200:
            raise RuntimeError(f"calibration request {base} answered {status}")
        if len(found) > items:
            # Classes start on the hour or half hour, many at once: end the window just before
            # or just after the (items+1)-th one's start, whichever count is nearer to `items`.
            cut = datetime.fromisoformat(found[items]["DateTime"])
            before = sum(datetime.fromisoformat(e["DateTime"]) < cut for e in found)
            after = sum(datetime.fromisoformat(e["DateTime"]) <= cut for e in found)
            if after - items < items - before:
                cut += timedelta(minutes=1)
            return Line(f"{base}?{query(starts, max(cut, starts + timedelta(minutes=1)))}", token)
    return Line(f"{base}?{query(starts, starts + span)}", token)


def tokens(secret: str) -> Callable[[str, str], str]:
    """A minter of the benchmark's tokens: (subject, role) -> a token the server accepts."""
    settings = Settings.from_mapping({"JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256"})
    return lambda subject, role: mint_token(settings, subject, role, 6 * 3600)


def user_mix(
    server: Server, dataset: Dataset, secret: str, users: int, seed: int, items: int = ITEMS
) -> tuple[Scenario, list[str], list[datetime]]:
    """Random students (their own list) and staff members (a student of one of their centers),
    each with a window fitted to `items` items; and the staff members and mornings drawn."""
    token = tokens(secret)
    rng = random.Random(seed)
    students, pairs = sample_users(dataset.url, users, seed)
    mornings = weekday_mornings(dataset.start, dataset.size.days, rng, len(students) + len(pairs))
    lines = [
        fitted(server, "/users/me/encounters", token(student, "Student"), morning, items)
        for student, morning in zip(students, mornings, strict=False)
    ]
    lines += [
        fitted(server, f"/users/{student}/encounters", token(staff, "StaffMember"), morning, items)
        for (staff, student), morning in zip(pairs, mornings[len(students) :], strict=True)
    ]
    rng.shuffle(lines)
    staff_members = sorted({staff for staff, _ in pairs})
    return Scenario(f"{items} items", lines), staff_members, mornings


def scenarios(
    server: Server, dataset: Dataset, secret: str, users: int, seed: int, fit: bool = False
) -> tuple[Scenario, dict[int, Scenario]]:
    """The 20-item mix (both roles), and staff members' own lists of 500 items (with `fit`, of
    each of FIT_ITEMS)."""
    token = tokens(secret)
    small, staff_members, mornings = user_mix(server, dataset, secret, users, seed)
    lists = {
        items: Scenario(
            f"{items} items",
            [
                fitted(server, "/users/me/encounters", token(staff, "StaffMember"), morning, items)
                for staff, morning in zip(staff_members[:20], mornings, strict=False)
            ],
        )
        for items in (FIT_ITEMS if fit else (BIG_ITEMS,))
    }
    return small, lists


def list_label(items: int) -> str:
    """The run of staff members' own lists of about `items` items, at 1 connection."""
    return "endpoint 500 items c1" if items == BIG_ITEMS else f"staff list {items} items c1"
