"""PostgreSQL's CPU for a student's statements: one round trip against two, JSON against rows.

    .venv/bin/python -m bench.statement_cpu --database bench_world [--days 8] [--rounds 20]

On a world `make bench` loaded (`bench_world`, or `--database`), for 20 students with a current
unit, each asking for their own list (by reference id) in a window of `--days` days, as the app
compiles the SQL today, on one connection, prepared as a request's statements are:
- "one": what a request runs on PostgreSQL: the resolver's lookup and the list as JSON, one
  statement (`service.resolvers`, `resolve_listing`);
- "two": the lookup, then the list as JSON (before the fifth pass of issue 17; still a staff
  member's way);
- "json": the list as JSON alone (the database writes the body from the rows' stored members,
  migration 0005);
- "rows": the same list as plain rows (SQLite's path, and what the peer's statement returns).

The figure is the backend's own CPU (user + system, from /proc/PID/schedstat in nanoseconds: as
`make bench` counts it, PostgreSQL must run on this host) and the client's wall time, a student
at a time, the kinds interleaved student by student in an order that alternates each round:
blocks of one kind after another drift on a shared machine by more than the differences measured.
Nothing is written; run it on a quiet machine, and read it as one figure of several.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.datasets import DEFAULT_SERVER, libpq_url
from service.app import create_app
from service.db import db
from service.driver_sql import driver_sql
from service.encounters import ListQuery, Window, _json_statement, _query, _statement
from service.identifiers import parse_identifier
from service.resolvers import _listing_parameters, _listing_statement, _parameters
from service.resolvers import _statement as _lookup_statement

STUDENTS = 20
KINDS = ("one", "two", "json", "rows")
# Each kind, for one student: the statements it runs, in order (SQL and the driver's values).
Statements = list[tuple[str, dict[str, Any]]]


def statements(url: str, days: int) -> dict[str, list[Statements]]:
    """Each student's statements of each kind, as a request compiles them."""
    app = create_app(
        {"DATABASE_URL": url, "JWT_SECRET": "statement-cpu-" * 4, "JWT_ALGORITHMS": "HS256"}
    )
    resolver = app.extensions["encounters.resolver"]
    found: dict[str, list[Statements]] = {name: [] for name in KINDS}
    with psycopg.connect(libpq_url(url)) as connection:
        students = [
            row[0]
            for row in connection.execute(
                "SELECT reference_id FROM users WHERE role = 'Student' AND current_unit IS NOT"
                " NULL ORDER BY reference_id LIMIT %s",
                (STUDENTS,),
            )
        ]
        first = connection.execute("SELECT min(starts_at) FROM encounters").fetchone()
    assert first is not None and first[0] is not None, "an empty world"
    with app.test_request_context():
        dialect = db.connection.dialect

        def compiled(statement: Any, parameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            driver = driver_sql(statement, dialect, parameters)
            assert driver is not None
            return driver

        for number, student in enumerate(students):
            identifiers = [parse_identifier(student)]
            target = resolver.resolve(identifiers)[0]
            starts = first[0] + timedelta(days=1 + number % 10)
            window = Window(starts, starts + timedelta(days=days))
            query = _query(target, window, None, None)
            assert query is not None
            shape, parameters = query
            kinds = tuple(identifier.kind for identifier in identifiers)
            lookup = compiled(_lookup_statement(kinds), _parameters(identifiers))
            listing = ListQuery(window)
            one = _listing_parameters(identifiers, listing)
            as_json = compiled(_json_statement(shape), parameters)
            found["one"].append([compiled(_listing_statement(kinds, listing.online), one)])
            found["two"].append([lookup, as_json])
            found["json"].append([as_json])
            found["rows"].append([compiled(_statement(shape), parameters)])
        db.dispose()
    return found


def backend_seconds(pid: int) -> float:
    """The backend's CPU so far, from the scheduler's own count (nanoseconds)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def main() -> None:
    """Print PostgreSQL CPU and client wall time a student, for each kind."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="bench_world")
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_SERVER_URL") or DEFAULT_SERVER
    )
    parser.add_argument("--days", type=int, default=8, help="the window: 8 days, ~280 items")
    parser.add_argument("--rounds", type=int, default=20)
    arguments = parser.parse_args()
    url = make_url(arguments.server_url).set(database=arguments.database).render_as_string(False)
    kinds = statements(url, arguments.days)
    cpu: dict[str, list[float]] = {name: [] for name in kinds}
    wall: dict[str, list[float]] = {name: [] for name in kinds}
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        connection.execute("SET max_parallel_workers_per_gather = 0")  # as requests read
        pid = connection.info.backend_pid

        def run(each: Statements) -> Any:
            return [connection.execute(sql, v, prepare=True).fetchall() for sql, v in each]

        items = statistics.mean(str(run(s)[0][0][0]).count('"Id"') for s in kinds["json"])
        print(f"{len(kinds['json'])} students, {arguments.days}-day windows, {items:.0f} items")
        for _ in range(6):  # past psycopg's prepare threshold and PostgreSQL's custom plans
            for each in kinds.values():
                for student in each:
                    run(student)
        for round_number in range(arguments.rounds):
            order = list(kinds) if round_number % 2 == 0 else list(reversed(kinds))
            spent = dict.fromkeys(kinds, 0.0)
            waited = dict.fromkeys(kinds, 0.0)
            for number in range(len(kinds["one"])):
                for name in order:
                    before, started = backend_seconds(pid), time.perf_counter()
                    run(kinds[name][number])
                    waited[name] += time.perf_counter() - started
                    spent[name] += backend_seconds(pid) - before
            for name in kinds:
                cpu[name].append(spent[name] / len(kinds[name]))
                wall[name].append(waited[name] / len(kinds[name]))
    for name in kinds:
        print(
            f"median {name:4} PostgreSQL CPU {statistics.median(cpu[name]) * 1e3:.3f} ms"
            f"  wall {statistics.median(wall[name]) * 1e3:.3f} ms a student ({arguments.rounds}"
            " rounds)"
        )


if __name__ == "__main__":
    main()
