"""Soak: drive the real service (gunicorn, the repo's gunicorn.conf.py) and check every answer.

    python -m bench.soak --database-url postgresql+psycopg://postgres@127.0.0.1:5432/soak \\
        --seconds 60 --connections 32 --workers 2

The database's tables are EMPTIED and the test dataset (tests/dataset.py) loaded. Then N
connections send, for T seconds, a mix of allowed, denied, unknown and malformed requests; each
answer is compared with what it must be (status, and the exact body: tests/oracle.py for lists).
Worker memory is sampled every second. The run fails (exit 1) on any 5xx, any wrong answer,
worker memory that grows, rows that change, or a log line holding an email, token or secret.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psutil

from service.admin.migrate import upgrade
from service.db import make_engine
from service.models import Base
from tests.database import row_counts
from tests.dataset import BASE, insert_dataset
from tests.leaks import leaks_in
from tests.live import Gunicorn, free_port, running_gunicorn
from tests.oracle import expected_encounters, visible
from tests.tokens import Tokens

ROOT = Path(__file__).resolve().parent.parent
PORTS = range(38400, 38500)
TOKEN_TTL_SECONDS = 3600
# Memory may settle during the first seconds; after that a worker that grows by more than this
# (or by a fifth of its size) is leaking.
RSS_GROWTH_LIMIT = 16 * 2**20
WINDOW = {
    "from": (BASE - timedelta(days=5)).isoformat(),
    "to": (BASE + timedelta(days=25)).isoformat(),
}
NOT_FOUND = "No user with that identifier is visible to you."
PROBLEM = "application/problem+json"


def reset_database(url: str) -> dict[str, int]:
    """Migrate, empty every table, load the test dataset; return the row counts."""
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    insert_dataset(engine)
    counts = row_counts(engine)
    engine.dispose()
    return counts


@dataclass(frozen=True)
class Probe:
    """One request of the mix and the answer it must get."""

    kind: str  # allowed, denied, unknown or malformed
    name: str
    path: str
    headers: dict[str, str]
    status: int
    check: Callable[[http.client.HTTPResponse, bytes], str | None] = lambda response, body: None
    method: str = "GET"


def json_equals(expected: Any) -> Callable[[http.client.HTTPResponse, bytes], str | None]:
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


@dataclass
class Tally:
    """What the connections saw; threads add under the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    errors: int = 0


def drive(server: Gunicorn, mix: list[Probe], seconds: float, connections: int, seed: int) -> Tally:
    """Send the mix from `connections` threads for `seconds`; check every answer."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    # Each kind gets an equal share of the requests, however many probes it has.
    kinds: dict[str, list[Probe]] = {}
    for probe in mix:
        kinds.setdefault(probe.kind, []).append(probe)
    groups = list(kinds.values())

    def connection_loop(number: int) -> None:
        chooser = random.Random(seed * 1000 + number)
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        while time.monotonic() < deadline:
            probe = chooser.choice(chooser.choice(groups))
            started = time.perf_counter()
            try:
                connection.request(probe.method, probe.path, headers=probe.headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                with tally.lock:
                    tally.errors += 1
                    tally.failures.append(f"{probe.name}: {type(error).__name__}")
                continue
            elapsed = time.perf_counter() - started
            wrong = (
                f"status {response.status}"
                if response.status != probe.status
                else probe.check(response, body)
            )
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
            with tally.lock:
                tally.sent[probe.kind] += 1
                tally.statuses[response.status] += 1
                tally.latencies.append(elapsed)
                if wrong and len(tally.failures) < 50:
                    tally.failures.append(f"{probe.name}: {wrong}")
                elif wrong:
                    tally.errors += 1
        connection.close()

    threads = [threading.Thread(target=connection_loop, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def sample_memory(server: Gunicorn, stop: threading.Event, samples: dict[int, list[int]]) -> None:
    """Every second, the resident memory of each worker (by pid)."""
    while not stop.wait(1.0):
        for worker in server.workers():
            with contextlib.suppress(psutil.Error):
                samples.setdefault(worker.pid, []).append(worker.memory_info().rss)


@dataclass
class Report:
    """The figures of one soak run and what went wrong in it."""

    seconds: float
    connections: int
    workers: int
    tally: Tally
    memory: dict[int, list[int]]
    rows_before: dict[str, int]
    rows_after: dict[str, int]
    leaks: list[str]
    log_path: Path
    problems: list[str] = field(default_factory=list)

    def judge(self) -> Report:
        """Fill `problems`: everything that makes this run a failure."""
        tally = self.tally
        self.problems = list(tally.failures)
        if tally.errors:
            self.problems.append(f"{tally.errors} further errors or wrong answers")
        server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
        if server_errors:
            self.problems.append(f"{server_errors} answers were 5xx")
        for kind in ("allowed", "denied", "unknown", "malformed"):
            if not tally.sent[kind]:
                self.problems.append(f"no {kind} request was sent")
        if len(self.memory) != self.workers:
            self.problems.append(f"worker pids seen: {sorted(self.memory)} (a worker restarted?)")
        for pid, rss in self.memory.items():
            settled = rss[min(len(rss) - 1, 2)]
            if rss[-1] - settled > max(RSS_GROWTH_LIMIT, settled // 5):
                self.problems.append(f"worker {pid} grew from {settled} to {rss[-1]} bytes")
        if self.rows_before != self.rows_after:
            self.problems.append(f"rows changed: {self.rows_before} -> {self.rows_after}")
        self.problems += [f"log leak: {leak}" for leak in self.leaks]
        return self

    def lines(self) -> list[str]:
        """The figures, for people."""
        tally = self.tally
        total = sum(tally.sent.values())
        latencies = sorted(tally.latencies) or [0.0]
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        mib = 2**20
        lines = [
            f"soak: {self.seconds:.0f} s, {self.connections} connections, "
            f"{self.workers} gunicorn workers",
            f"requests: {total} ({total / self.seconds:.0f}/s); "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(tally.sent.items())),
            "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())),
            f"latency ms: p50 {quantiles[49] * 1000:.1f}, p95 {quantiles[94] * 1000:.1f}, "
            f"p99 {quantiles[98] * 1000:.1f}, max {latencies[-1] * 1000:.1f}",
        ]
        for pid, rss in sorted(self.memory.items()):
            lines.append(
                f"worker {pid} RSS MiB: first {rss[0] / mib:.1f}, min {min(rss) / mib:.1f}, "
                f"max {max(rss) / mib:.1f}, last {rss[-1] / mib:.1f} ({len(rss)} samples)"
            )
        lines.append(f"rows unchanged: {self.rows_before == self.rows_after}")
        lines.append(f"log leaks (emails, tokens, secret): {len(self.leaks)} in {self.log_path}")
        lines.append(f"wrong answers, 5xx or errors: {len(self.problems)}")
        lines += [f"  FAIL {problem}" for problem in self.problems[:20]]
        return lines


def soak(
    database_url: str,
    *,
    seconds: float,
    connections: int,
    workers: int,
    seed: int = 1,
    port: int | None = None,
    log_path: Path | None = None,
) -> Report:
    """Run one soak against a fresh gunicorn on `database_url`; return its judged report."""
    secret = secrets.token_urlsafe(48)
    rows_before = reset_database(database_url)
    log_path = log_path or Path(f"/tmp/encounters-soak-{os.getpid()}.log")
    mix = probes(secret)
    port = port or free_port(PORTS)
    with running_gunicorn(database_url, secret, log_path, workers=workers, port=port) as server:
        drive(server, mix, min(2.0, seconds / 5), min(connections, 4), seed)  # warm-up
        memory: dict[int, list[int]] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=sample_memory, args=(server, stop, memory))
        sampler.start()
        tally = drive(server, mix, seconds, connections, seed)
        stop.set()
        sampler.join()
    tokens = [probe.headers.get("Authorization", "").partition(" ")[2] for probe in mix]
    engine = make_engine(database_url)
    rows_after = row_counts(engine)
    engine.dispose()
    return Report(
        seconds, connections, workers, tally, memory, rows_before, rows_after,
        leaks_in(log_path.read_text(errors="replace"), [t for t in tokens if t] + [secret]),
        log_path,
    ).judge()  # fmt: skip


def main() -> int:
    """The command line: run one soak, print its figures, exit 1 if anything went wrong."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="the database to EMPTY and load with the test dataset (default: TEST_DATABASE_URL)",
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=None, help="default: a free one of 38400-38499")
    arguments = parser.parse_args()
    if not arguments.database_url:
        parser.error("--database-url (or TEST_DATABASE_URL) is required")
    report = soak(
        arguments.database_url,
        seconds=arguments.seconds,
        connections=arguments.connections,
        workers=arguments.workers,
        seed=arguments.seed,
        port=arguments.port,
    )
    print("\n".join(report.lines()))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
