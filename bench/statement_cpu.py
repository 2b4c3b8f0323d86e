"""PostgreSQL's CPU for the list statement alone: the JSON statement against the plain rows.

    .venv/bin/python -m bench.statement_cpu --database bench_world [--days 8] [--rounds 20]

On a world `make bench` loaded (`bench_world`, or `--database`), for 20 students with a current
unit: each one's list statement as a request runs it (the SQL the app compiles today, its
parameters), for a window of `--days` days, on one connection, in rounds that alternate the two
statements. The figure is the backend's own CPU a statement (user + system, as `make bench`
counts it: PostgreSQL must run on this host), and the wall time the client saw. "json" is what
a request runs on PostgreSQL (the database writes the body from the rows' stored members,
migration 0005); "rows" is the same list as plain rows (SQLite's path, and what the peer's
statement returns). Nothing is written; run it on a quiet machine, and read it as one figure of
several.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.datasets import DEFAULT_SERVER, libpq_url
from bench.load import cpu_seconds
from service.app import create_app
from service.db import db
from service.driver_sql import driver_sql
from service.encounters import Window, _json_statement, _query, _statement
from service.identifiers import parse_identifier

STUDENTS = 20


def statements(url: str, days: int) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each student's JSON statement and plain-rows statement, as a request compiles them."""
    app = create_app(
        {"DATABASE_URL": url, "JWT_SECRET": "statement-cpu-" * 4, "JWT_ALGORITHMS": "HS256"}
    )
    resolver = app.extensions["encounters.resolver"]
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {"json": [], "rows": []}
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
        for number, student in enumerate(students):
            target = resolver.resolve([parse_identifier(student)])[0]
            starts = first[0] + timedelta(days=1 + number % 10)
            query = _query(target, Window(starts, starts + timedelta(days=days)), None, None)
            assert query is not None
            shape, parameters = query
            for name, statement in (("json", _json_statement), ("rows", _statement)):
                compiled = driver_sql(statement(shape), dialect, parameters)
                assert compiled is not None
                found[name].append(compiled)
        db.dispose()
    return found


def main() -> None:
    """Print PostgreSQL CPU and client wall time a statement, for each kind, each round."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="bench_world")
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_SERVER_URL") or DEFAULT_SERVER
    )
    parser.add_argument("--days", type=int, default=8, help="the window: 8 days, ~280 items")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=10, help="runs of each statement a round")
    arguments = parser.parse_args()
    url = make_url(arguments.server_url).set(database=arguments.database).render_as_string(False)
    kinds = statements(url, arguments.days)
    cpu: dict[str, list[float]] = {name: [] for name in kinds}
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        connection.execute("SET max_parallel_workers_per_gather = 0")  # as requests read
        pid = connection.info.backend_pid
        items = statistics.mean(
            str(connection.execute(sql, values).fetchall()[0][0]).count('"Id"')
            for sql, values in kinds["json"]
        )
        print(f"{len(kinds['json'])} students, {arguments.days}-day windows, {items:.0f} items")
        for round_number in range(arguments.rounds):
            order = list(kinds) if round_number % 2 == 0 else list(reversed(kinds))
            for name in order:
                for sql, values in kinds[name]:  # prepared, as a request's statements are
                    connection.execute(sql, values, prepare=True).fetchall()
                runs = arguments.repeat * len(kinds[name])
                before, started = cpu_seconds([pid]), time.perf_counter()
                for _ in range(arguments.repeat):
                    for sql, values in kinds[name]:
                        connection.execute(sql, values, prepare=True).fetchall()
                seconds = (cpu_seconds([pid]) - before) / runs
                wall = (time.perf_counter() - started) / runs
                cpu[name].append(seconds)
                print(
                    f"round {round_number + 1} {name:4} PostgreSQL CPU {seconds * 1e3:.3f} ms"
                    f"  wall {wall * 1e3:.3f} ms a statement",
                    flush=True,
                )
    for name, figures in cpu.items():
        print(f"median {name:4} PostgreSQL CPU {statistics.median(figures) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
