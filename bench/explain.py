"""The query plans of one request: capture its SQL in-process, then EXPLAIN it on PostgreSQL.

The statements are whatever the code runs today (a `before_cursor_execute` listener records them
while the real app answers one request), so the plans follow any change to the queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Engine, event

from bench.datasets import libpq_url
from bench.load import Line

# A sequential scan of one of these is a query that grows with the data.
BIG_TABLES = ("encounters", "bookings", "users", "staff_centers")
_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
# An index scan of encounters run once per center (a nested loop) is no single range scan: its
# cost grows with the number of centers. Subplans per answered row (bookings) are not counted.
_ENCOUNTER_PROBES = re.compile(
    r"(?:Index Scan|Index Only Scan) using (\w+) on encounters\b.*loops=(\d+)"
    r"|Bitmap Index Scan on (ix_encounters\w*).*loops=(\d+)"
)
REPEATED_PROBES = 20


@dataclass
class Plan:
    """One statement of a request and its EXPLAIN (ANALYZE, BUFFERS)."""

    statement: str
    lines: list[str]

    @property
    def seq_scans(self) -> list[str]:
        """The big tables this plan reads whole."""
        return [t for t in _SEQ_SCAN.findall("\n".join(self.lines)) if t in BIG_TABLES]

    @property
    def repeated_probes(self) -> list[str]:
        """Indexes of encounters scanned more than REPEATED_PROBES times in this plan."""
        found = []
        for text in self.lines:
            match = _ENCOUNTER_PROBES.search(text)
            if match:
                index = match.group(1) or match.group(3)
                loops = int(match.group(2) or match.group(4))
                if loops > REPEATED_PROBES:
                    found.append(f"{index} x{loops}")
        return found

    @property
    def execution_ms(self) -> float | None:
        """PostgreSQL's own execution time."""
        for line in reversed(self.lines):
            if line.startswith("Execution Time:"):
                return float(line.split()[2])
        return None


@dataclass
class RequestPlans:
    """The plans of every statement one request ran."""

    label: str
    path: str
    status: int
    plans: list[Plan] = field(default_factory=list)


@contextmanager
def _captured() -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        statements.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


def explain_requests(
    database_url: str, secret: str, requests: Mapping[str, Line]
) -> list[RequestPlans]:
    """Answer each request in-process with the real app, then EXPLAIN the SQL it ran."""
    from service.app import create_app

    app = create_app(
        {"DATABASE_URL": database_url, "JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256"}
    )
    client = app.test_client()
    found = []
    with psycopg.connect(libpq_url(database_url)) as raw:
        for label, line in requests.items():
            with _captured() as statements:
                response = client.get(line.path, headers={"Authorization": f"Bearer {line.token}"})
            plans = RequestPlans(label, line.path, response.status_code)
            for statement, parameters in statements:
                if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    continue
                rows = raw.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters or None
                ).fetchall()
                plans.plans.append(Plan(statement, [row[0] for row in rows]))
            raw.rollback()
            found.append(plans)
    return found


def report(found: list[RequestPlans]) -> list[str]:
    """The plans for people, each Seq Scan on a big table flagged."""
    lines = []
    for request in found:
        lines.append(f"-- {request.label}: GET {request.path} -> {request.status}")
        for number, plan in enumerate(request.plans, start=1):
            flag = f"  <-- SEQ SCAN on {', '.join(plan.seq_scans)}" if plan.seq_scans else ""
            if plan.repeated_probes:
                flag += f"  <-- REPEATED INDEX PROBES {', '.join(plan.repeated_probes)}"
            lines.append(f"   statement {number}{flag}")
            lines += [f"     | {text}" for text in plan.lines]
    return lines
