"""Drive a running server with wrk and measure it: req/s, latency, CPU and SQL per request.

wrk (Debian's `wrk` package) runs in its own process; a Lua script cycles over a file of
`path token` lines, so every request is a real user's with a real token. Around the run the
harness reads the server's CPU time (gunicorn master and workers, and PostgreSQL's processes)
with psutil and the service's own Prometheus counters from /metrics.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import psutil
import psycopg

from bench.datasets import libpq_url

# Written by wrk's `done` hook: one JSON line with the figures the harness needs.
LUA = r"""
local lines, counter, position = {}, 0, 0
setup = function(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
init = function(args)
  for line in io.lines(args[1]) do
    local path, token = line:match("^(%S+)%s+(%S+)$")
    lines[#lines + 1] = wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
  end
  position = (offset or 0) * 7919 % #lines
end
request = function()
  position = position % #lines + 1
  return lines[position]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "non2xx3xx": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""
STATEMENTS = "encounters_db_statement_duration_seconds_count"
REQUESTS = "encounters_http_requests_total"
# Label values may hold braces themselves: route="/users/{userIdentifier}/encounters".
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+([0-9.eE+-]+)$")


class Server(Protocol):
    """A server started here: gunicorn (tests.live.Gunicorn) or the peer's uvicorn."""

    host: str
    port: int

    @property
    def pid(self) -> int:
        """The master process (its children are the workers)."""
        ...


@dataclass(frozen=True)
class Line:
    """One request of a wrk run: a path (with its query) and the bearer token."""

    path: str
    token: str


@dataclass
class Run:
    """The figures of one wrk run against one server."""

    label: str
    connections: int
    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    app_cpu_ms_per_request: float
    db_cpu_ms_per_request: float
    statements_per_request: float
    counted_requests: int

    @property
    def requests_per_second(self) -> float:
        """Throughput."""
        return self.requests / self.seconds if self.seconds else 0.0

    def row(self) -> str:
        """One line for people."""
        return (
            f"{self.label:<22} c={self.connections:<3} {self.requests_per_second:8.1f} req/s  "
            f"p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms  "
            f"CPU/req app {self.app_cpu_ms_per_request:5.2f} ms "
            f"db {self.db_cpu_ms_per_request:5.2f} ms  "
            f"SQL/req {self.statements_per_request:4.2f}  "
            f"non-2xx {self.non_2xx}  errors {self.errors}"
        )


def wrk_binary() -> str:
    """The wrk executable (`make bench` installs Debian's package when it is missing)."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (make bench does this)")
    return found


class Counts(NamedTuple):
    """What the server's /metrics counted so far."""

    statements: float  # SQL statements executed
    requests: float  # requests answered on the routes measured
    non_2xx: float  # requests answered with anything but 2xx, on any route


def counts(text: str, route_part: str = "/encounters") -> Counts:
    """The counts of one scrape; `requests` on routes containing `route_part`.

    `non_2xx` is the server's own count: wrk's counts only statuses of 400 and up, so a
    redirect (3xx) would pass a run that must answer 200 to everything.
    """
    statements = requests = non_2xx = 0.0
    for raw in text.splitlines():
        match = _SAMPLE.match(raw.strip())
        if not match:
            continue
        name, labels, value = match.groups()
        if name == STATEMENTS:
            statements += float(value)
        elif name == REQUESTS:
            requests += float(value) if route_part in (labels or "") else 0.0
            non_2xx += 0.0 if 'status="2' in (labels or "") else float(value)
    return Counts(statements, requests, non_2xx)


def metrics(server: Server) -> Counts:
    """The server's counts so far."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"/metrics answered {response.status}")
    return counts(text)


def settled_metrics(server: Server, timeout: float = 10) -> Counts:
    """`metrics` once requests still in flight (wrk stops mid-request) are finished."""
    deadline = time.monotonic() + timeout
    last = metrics(server)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = metrics(server)
        if current == last:
            return current
        last = current
    return last


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds so far of these processes (gone ones count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += _process_seconds(pid)
    return total


def _process_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def app_cpu(server: Server) -> float:
    """CPU seconds so far of the gunicorn master and its workers."""
    master = psutil.Process(server.pid)
    return cpu_seconds([master.pid, *(child.pid for child in master.children(recursive=True))])


def database_cpu(database_url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to this database (by pid).

    Only this database's backends: other databases of the server (other people's work) and
    backends that come and go would make a sum over every postgres process meaningless.
    """
    with psycopg.connect(libpq_url(database_url), autocommit=True) as pg:
        pids = [
            row[0]
            for row in pg.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    found = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found[pid] = _process_seconds(pid)
    return found


def _database_delta(before: dict[int, float], after: dict[int, float]) -> float:
    # A backend born during the run counts whole; one that ended is lost (the pool keeps them).
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def drive(
    server: Server,
    lines: list[Line],
    label: str,
    *,
    database_url: str,
    seconds: float,
    connections: int,
    threads: int = 2,
    has_metrics: bool = True,
) -> Run:
    """One wrk run of `seconds` over `lines`, with the server's CPU and SQL around it.

    `has_metrics=False`: a server without the service's /metrics (the peer); no SQL count, and a
    pause instead of the settled metrics for the requests still in flight when wrk stops.
    """
    none = Counts(0.0, 0.0, 0.0)
    with tempfile.TemporaryDirectory(prefix="encounters-wrk-") as folder:
        script, requests_file = Path(folder, "cycle.lua"), Path(folder, "requests.txt")
        script.write_text(LUA)
        requests_file.write_text("".join(f"{line.path} {line.token}\n" for line in lines))
        before = settled_metrics(server) if has_metrics else none
        app_before, db_before = app_cpu(server), database_cpu(database_url)
        done = subprocess.run(
            [
                wrk_binary(),
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout=10s",
                "-s",
                str(script),
                f"http://{server.host}:{server.port}",
                "--",
                str(requests_file),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        if not has_metrics:
            time.sleep(1.0)
        after = settled_metrics(server) if has_metrics else none
        app_after, db_after = app_cpu(server), database_cpu(database_url)
    found = re.search(r"^WRK_JSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    figures = json.loads(found.group(1))
    requests = figures["requests"]
    counted = int(after.requests - before.requests)
    per = max(requests, 1)
    return Run(
        label=label,
        connections=connections,
        requests=requests,
        seconds=figures["duration_us"] / 1e6,
        errors=sum(
            figures[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
        non_2xx=max(figures["non2xx3xx"], int(after.non_2xx - before.non_2xx)),
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        app_cpu_ms_per_request=(app_after - app_before) * 1000 / per,
        db_cpu_ms_per_request=_database_delta(db_before, db_after) * 1000 / per,
        statements_per_request=(after.statements - before.statements) / max(counted, 1),
        counted_requests=counted,
    )
