"""`make scale-check`: the scale-out topology proven on 127.0.0.1 (docs/scaling.md).

    python -m bench.scale_check [--replica-port 5433] [--pgbouncer-port 6432]

Starts a streaming replica of the local PostgreSQL 15 (5432), PgBouncer in transaction mode with
a pool smaller than its clients, 3 gunicorn instances and HAProxy (deploy/haproxy/haproxy.cfg);
loads data through the primary (`init-db`, `demo-data`, `load-data`), waits for the standby to
replay it, then checks (a) identical answers on every path, (b) connections through PgBouncer,
(c) a drain that loses nothing, (d) kill -9 under load, (e) throughput and CPU per request of each
tier at 1, 2 and 3 instances. Prints the capacity model, writes bench/results/scale-check.json,
ends with one summary line, and exits 1 when a check fails. Runs as root (it creates a cluster
and edits the primary's pg_hba.conf, restored at the end); everything it starts is stopped by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

import psutil
import psycopg

from bench import topology
from bench.datasets import drop_database, ensure_database, flask
from bench.load import LUA, Line, wrk_binary
from bench.mixes import ITEMS, fitted, sample_users
from service.config import Settings
from service.tokens import mint_token
from tests.live import Gunicorn, port_is_free, running_gunicorn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
INSTANCES = 3
TOTAL_WORKERS = 6  # (e): 1 x 6, 2 x 3 and 3 x 2
SERVICE_POOL_SIZE = 5  # service.db.make_engine's pool_size
PGBOUNCER_POOL = 3  # per database: smaller than the 6 workers' connections
PGBOUNCER_QUERY_WAIT = 5  # seconds: the service's pool_timeout
TARGET_UTILISATION = 0.7
REPLICA_CORES = 1.0
MEASURE_SECONDS = 6  # (e), per layout  # the capacity model's unit: one replica at a 1-CPU limit


@dataclass
class Check:
    """One verdict, with the figures that back it."""

    name: str
    passed: bool
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    short: str = ""  # the figure the summary line gives


# --- requests --------------------------------------------------------------------------------


def get(port: int, line: Line) -> tuple[int, bytes, str]:
    """(status, body, ETag) of one GET on 127.0.0.1:`port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", line.path, headers={"Authorization": f"Bearer {line.token}"})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("ETag") or ""
    finally:
        connection.close()


@contextlib.contextmanager
def wrk(port: int, lines: list[Line], seconds: float, connections: int) -> Iterator[dict[str, Any]]:
    """wrk through 127.0.0.1:`port` while the block runs; its figures fill the dict on exit."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="encounters-wrk-") as folder:
        script, requests_file = Path(folder, "cycle.lua"), Path(folder, "requests.txt")
        script.write_text(LUA)
        requests_file.write_text("".join(f"{line.path} {line.token}\n" for line in lines))
        process = subprocess.Popen(
            [wrk_binary(), f"-t{min(2, connections)}", f"-c{connections}", f"-d{round(seconds)}s",
             "--timeout=10s", "-s", str(script), f"http://127.0.0.1:{port}", "--",
             str(requests_file)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            yield figures
            output, _ = process.communicate(timeout=seconds + 30)
        finally:
            topology.stop_process(process)
    found = [line for line in output.splitlines() if line.startswith("WRK_JSON ")]
    if process.returncode or not found:
        raise RuntimeError(f"wrk failed ({process.returncode}): {output}")
    figures.update(json.loads(found[0].removeprefix("WRK_JSON ")))
    figures["failed"] = sum(
        figures[name]
        for name in ("connect_errors", "read_errors", "write_errors", "timeouts", "non2xx3xx")
    )
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)


# --- the fleet of gunicorn instances ----------------------------------------------------------


class Fleet:
    """gunicorn instances on fixed ports (HAProxy's app1..app3), started and stopped by slot."""

    def __init__(
        self, name: str, ports: list[int], environment: dict[str, str], logs: Path
    ) -> None:
        self.name = name
        self.ports = ports
        self.environment = environment
        self.logs = logs
        self.running: dict[int, tuple[contextlib.ExitStack, Gunicorn]] = {}
        self.started_pids: set[int] = set()

    def start(
        self, workers: dict[int, int], environments: dict[int, dict[str, str]] | None = None
    ) -> None:
        """`gunicorn -c gunicorn.conf.py wsgi:app` on each slot's port, in parallel, all ready."""

        def one(slot: int) -> tuple[contextlib.ExitStack, Gunicorn]:
            environment = {**self.environment, **(environments or {}).get(slot, {})}
            stack = contextlib.ExitStack()
            server = stack.enter_context(
                running_gunicorn(
                    environment["DATABASE_URL"],
                    environment["JWT_SECRET"],
                    self.logs / f"{self.name}{slot + 1}.log",
                    workers=workers[slot],
                    port=self.ports[slot],
                    environment=environment,
                )
            )
            return stack, server

        with ThreadPoolExecutor(len(workers)) as pool:
            futures = {slot: pool.submit(one, slot) for slot in workers}
        errors = []
        for slot, future in futures.items():
            try:
                self.running[slot] = future.result()
            except Exception as error:  # the others are kept, to be stopped like any
                errors.append(error)
                continue
            self.started_pids.update(topology.with_children(self.running[slot][1].pid))
        if errors:
            raise errors[0]

    def stop(self, slot: int) -> int | None:
        """SIGTERM (a graceful stop); the exit status."""
        stack, server = self.running.pop(slot)
        stack.close()
        return server.returncode

    def stop_all(self) -> None:
        """Stop every instance, in parallel."""
        with ThreadPoolExecutor(max(1, len(self.running))) as pool:
            list(pool.map(self.stop, list(self.running)))

    def pids(self) -> list[int]:
        """Masters and workers of every running instance."""
        masters = [server.pid for _, server in self.running.values()]
        return [pid for master in masters for pid in topology.with_children(master)]


# --- data -------------------------------------------------------------------------------------


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


def request_lines(url: str, secret: str, direct: Gunicorn) -> tuple[list[Line], list[Line]]:
    """(a)'s requests (both roles, three windows each) and (b)-(e)'s 20-item mix."""
    settings = Settings.from_mapping({"JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256"})

    def token(subject: str, role: str) -> str:
        return mint_token(settings, subject, role, 3600)

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


# --- the checks -------------------------------------------------------------------------------


def check_identical(
    lines: list[Line], targets: dict[str, int], primary: str, replica: str, marker: str
) -> Check:
    """(a) Every request answers the same status, body and ETag on every path."""
    differing, not_ok, items = [], 0, []
    for line in lines:
        answers = {name: get(port, line) for name, port in targets.items()}
        first = next(iter(answers.values()))
        if any(answer != first for answer in answers.values()):
            differing.append(line.path)
        if any(status != 200 for status, _, _ in answers.values()):
            not_ok += 1
        elif first[0] == 200:
            items.append(len(json.loads(first[1])))
    # The replica path must have read from the standby, and never from the primary.
    on_primary, on_standby = (_connections(url, marker) for url in (primary, replica))
    passed = (
        not differing and not not_ok and len(lines) >= 200 and on_standby > 0 and on_primary == 0
    )
    summary = (
        f"{len(lines) - len(differing)}/{len(lines)} identical (status, body, ETag) on "
        f"{', '.join(targets)}; non-200 {not_ok}; items per answer {min(items, default=0)}-"
        f"{max(items, default=0)}; replica path: {on_standby} connection(s) on the standby, "
        f"{on_primary} on the primary"
    )
    figures = {"requests": len(lines), "differing": differing[:5]}
    return Check(
        "a", passed, summary, figures, f"{len(lines) - len(differing)}/{len(lines)} identical"
    )


def _connections(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as pg:
        row = pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


def check_connections(
    haproxy: topology.HAProxy,
    bouncer: topology.PgBouncer,
    replica: str,
    alias: str,
    mix: list[Line],
) -> Check:
    """(b) Under load, server connections stay within PgBouncer's pool; clients may be more."""
    servers, clients, waits = [], [], []
    with (
        psycopg.connect(replica, autocommit=True) as standby,
        wrk(haproxy.port, mix, seconds=6, connections=12) as run,
    ):
        deadline = time.monotonic() + 5.5
        while time.monotonic() < deadline:
            row = standby.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            servers.append(int(row[0]) if row else 0)
            pool = next(p for p in bouncer.show("POOLS") if p["database"] == alias)
            clients.append(int(pool["cl_active"]) + int(pool["cl_waiting"]))
            waits.append(int(pool["maxwait"]))
            time.sleep(0.2)
    bound = INSTANCES * (TOTAL_WORKERS // INSTANCES) * SERVICE_POOL_SIZE
    passed = max(servers) <= bouncer.pool_size < max(clients) <= bound and run["failed"] == 0
    summary = (
        f"PostgreSQL server connections max {max(servers)} <= pool {bouncer.pool_size}; "
        f"PgBouncer clients max {max(clients)} (bound {INSTANCES} instances x "
        f"{TOTAL_WORKERS // INSTANCES} workers x pool {SERVICE_POOL_SIZE} = {bound}); "
        f"max client wait {max(waits)} s; {run['requests']} requests, {run['failed']} failed"
    )
    short = f"server conns {max(servers)} <= pool {bouncer.pool_size} < clients {max(clients)}"
    return Check("b", passed, summary, {"servers": max(servers), "clients": max(clients)}, short)


def check_drain(haproxy: topology.HAProxy, fleet: Fleet, mix: list[Line]) -> Check:
    """(c) app1 drained, then SIGTERM, during a 20 s load: no request may fail."""
    with wrk(haproxy.port, mix, seconds=20, connections=8) as run:
        time.sleep(5)
        served_before = int(haproxy.servers()["app1"]["stot"])
        began = time.monotonic()
        haproxy.set_state("app1", "drain")
        while time.monotonic() - began < 15:
            state = haproxy.servers()["app1"]
            if state["scur"] == "0" and state["qcur"] == "0":
                break
            time.sleep(0.05)
        drained = time.monotonic() - began
        status = fleet.stop(0)
        haproxy.set_state("app1", "maint")
    passed = run["failed"] == 0 and status == 0 and served_before > 0
    summary = (
        f"app1 served {served_before} requests, drained in {drained:.2f} s, stopped with status "
        f"{status}; {run['requests']} requests in 20 s, {run['failed']} failed"
    )
    short = f"drain {run['failed']}/{run['requests']} failed"
    return Check(
        "c", passed, summary, {"requests": run["requests"], "failed": run["failed"]}, short
    )


def check_kill(haproxy: topology.HAProxy, fleet: Fleet, mix: list[Line]) -> Check:
    """(d) kill -9 of app2 (master and workers) under load: failures and time to DOWN."""
    fleet.start({0: TOTAL_WORKERS // INSTANCES})
    haproxy.set_state("app1", "ready")
    haproxy.wait_status("app1", "UP")
    victim = fleet.running[1][1]
    with wrk(haproxy.port, mix, seconds=10, connections=8) as run:
        time.sleep(3)
        for pid in topology.with_children(victim.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        down = haproxy.wait_status("app2", "DOWN", timeout=15)
    fleet.stop(1)
    rate = run["failed"] / max(run["requests"], 1)
    passed = rate <= 0.005 and down <= 10
    summary = (
        f"{run['requests']} requests in 10 s, {run['failed']} failed ({rate:.2%}); HAProxy "
        f"marked app2 DOWN {down:.2f} s after the kill"
    )
    short = f"kill -9 {run['failed']}/{run['requests']} failed, DOWN in {down:.1f} s"
    figures = {"requests": run["requests"], "failed": run["failed"], "down_seconds": round(down, 2)}
    return Check("d", passed, summary, figures, short)


def check_throughput(
    haproxy: topology.HAProxy,
    fleet: Fleet,
    mix: list[Line],
    tiers: dict[str, Callable[[], list[int]]],
) -> Check:
    """(e) Throughput and CPU per request of each tier at 1, 2 and 3 instances, same workers."""
    layouts, failed = [], 0
    for instances in (1, 2, 3):
        fleet.stop_all()
        fleet.start({slot: TOTAL_WORKERS // instances for slot in range(instances)})
        for slot in range(INSTANCES):
            haproxy.set_state(f"app{slot + 1}", "ready" if slot < instances else "maint")
        for slot in range(instances):
            haproxy.wait_status(f"app{slot + 1}", "UP")
        with wrk(haproxy.port, mix, seconds=1, connections=12):
            pass  # warm-up: pools connected, caches warm
        pids = {name: find() for name, find in tiers.items()}
        before = {name: topology.cpu_seconds(p) for name, p in pids.items()}
        with wrk(haproxy.port, mix, seconds=MEASURE_SECONDS, connections=12) as run:
            pass
        pids = {name: find() for name, find in tiers.items()}
        cpu = {
            name: (topology.cpu_seconds(p) - before[name]) * 1000 / max(run["requests"], 1)
            for name, p in pids.items()
        }
        failed += run["failed"]
        layouts.append({
            "instances": instances, "workers": TOTAL_WORKERS // instances,
            "rps": round(run["rps"], 1), "p50_ms": run["p50_us"] / 1000,
            "p99_ms": run["p99_us"] / 1000, "failed": run["failed"],
            "cpu_ms_per_request": {name: round(value, 3) for name, value in cpu.items()},
        })  # fmt: skip
    for layout in layouts:
        per_tier = " ".join(f"{k} {v:.2f}" for k, v in layout["cpu_ms_per_request"].items())
        print(
            f"    {layout['instances']} x {layout['workers']} workers: {layout['rps']:7.1f} req/s"
            f"  p50 {layout['p50_ms']:6.1f} ms  p99 {layout['p99_ms']:6.1f} ms  "
            f"CPU ms/req: {per_tier}  failed {layout['failed']}"
        )
    summary = ", ".join(f"{x['instances']} inst {x['rps']:.0f} req/s" for x in layouts)
    short = "/".join(f"{x['rps']:.0f}" for x in layouts) + " req/s at 1/2/3 instances"
    return Check("e", failed == 0, summary + f"; {failed} failed", {"layouts": layouts}, short)


def check_tests(primary: str, standby: str) -> Check:
    """The test modules that need a real hot standby and a real PgBouncer, run against them."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/test_replica.py", "tests/test_pgbouncer.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "TEST_DATABASE_URL": primary, "TEST_REPLICA_DATABASE_URL": standby},
    )  # fmt: skip
    lines = done.stdout.strip().splitlines() or [done.stderr.strip()]
    last = lines[-1].strip("= ")
    passed = done.returncode == 0 and "skipped" not in last
    if not passed:
        print(done.stdout[-3000:])
    summary = f"tests/test_replica.py and tests/test_pgbouncer.py on the standby: {last}"
    return Check("tests", passed, summary, short=last.split(" in ")[0])


def capacity(layouts: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    """The capacity model from the measured CPU per request (the mean of the three layouts)."""
    tiers = layouts[0]["cpu_ms_per_request"].keys()
    c = {t: sum(x["cpu_ms_per_request"][t] for x in layouts) / len(layouts) for t in tiers}
    answer: dict[str, Any] = {"cpu_ms_per_request": {t: round(v, 3) for t, v in c.items()}}
    for rate in (1_000, 10_000):
        busy = {t: rate * c[t] / 1000 for t in c}  # cores kept busy at `rate`
        answer[str(rate)] = {
            "replicas": math.ceil(busy["gunicorn"] / (REPLICA_CORES * TARGET_UTILISATION)),
            "postgresql_cores": math.ceil(busy["postgresql"] / TARGET_UTILISATION),
            "pgbouncer_processes": math.ceil(busy["pgbouncer"] / TARGET_UTILISATION),
            "haproxy_cores": math.ceil(busy["haproxy"] / TARGET_UTILISATION),
        }
    answer["this_machine_max_rps"] = round(cores * 1000 / sum(c.values()), 0)
    return answer


# --- the run ----------------------------------------------------------------------------------


def scale_check(args: argparse.Namespace, checks: list[Check]) -> None:
    """Build the topology, run the checks, tear it all down (in the `with` blocks' exits)."""
    primary_admin = f"postgresql://postgres@127.0.0.1:{args.primary_port}/postgres"
    name = f"scale_check_{os.getpid()}"
    primary = f"postgresql://postgres@127.0.0.1:{args.primary_port}/{name}"
    standby = f"postgresql://postgres@127.0.0.1:{args.replica_port}/{name}"
    sqlalchemy = primary.replace("postgresql://", "postgresql+psycopg://")
    logs = RESULTS / "scale-check"
    logs.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    with contextlib.ExitStack() as stack:
        hba = stack.enter_context(topology.replication_allowed(primary_admin))
        replica = stack.enter_context(
            topology.streaming_replica(args.primary_port, args.replica_port, hba)
        )
        for database in (name, f"{name}_tests"):
            ensure_database(sqlalchemy, database)
            stack.callback(drop_database, sqlalchemy, database)
        began = time.monotonic()
        flask(sqlalchemy, "init-db")
        progress("replica up")
        demo = ("--centers", "2", "--students", "400", "--staff", "20")
        progress(flask(sqlalchemy, "demo-data", *demo))
        document = logs / "import.json"
        document.write_text(json.dumps(import_document(datetime.now(UTC) + timedelta(days=1))))
        progress(flask(sqlalchemy, "load-data", str(document)).splitlines()[-1])
        replay = topology.wait_for_replay(primary, standby)
        progress(
            f"loaded through the primary in {time.monotonic() - began:.1f} s; "
            f"the standby replayed it {replay:.2f} s after the last commit"
        )
        bouncer = stack.enter_context(
            topology.pgbouncer(
                args.pgbouncer_port,
                {name: f"host=127.0.0.1 port={args.primary_port} dbname={name}",
                 f"{name}_ro": f"host=127.0.0.1 port={args.replica_port} dbname={name}"},
                PGBOUNCER_POOL, PGBOUNCER_QUERY_WAIT,
            )
        )  # fmt: skip
        ports = topology.free_ports(7)
        app_ports, single_ports, lb_port = ports[:3], ports[3:6], ports[6]
        lb = stack.enter_context(topology.haproxy(lb_port, [f"127.0.0.1:{p}" for p in app_ports]))
        fleet = Fleet(
            "app",
            app_ports,
            {
                "DATABASE_URL": bouncer.url(name),
                "DATABASE_REPLICA_URL": bouncer.url(f"{name}_ro"),
                "DATABASE_PREPARED_STATEMENTS": "off",
                "JWT_SECRET": secret,
            },
            logs,
        )
        stack.callback(fleet.stop_all)
        fleet.start({slot: TOTAL_WORKERS // INSTANCES for slot in range(INSTANCES)})
        # (a)'s other paths: one single-worker instance each.
        marker = f"scale_check_reads_{os.getpid()}"
        singles = Fleet("single", single_ports, {"JWT_SECRET": secret}, logs)
        stack.callback(singles.stop_all)
        paths = {
            "direct": {"DATABASE_URL": sqlalchemy},
            "PgBouncer": {"DATABASE_URL": bouncer.url(name), "DATABASE_PREPARED_STATEMENTS": "off"},
            "replica": {
                "DATABASE_URL": sqlalchemy,
                "DATABASE_REPLICA_URL": standby.replace("postgresql://", "postgresql+psycopg://")
                + f"?application_name={marker}",
            },
        }
        singles.start({slot: 1 for slot in range(3)}, dict(enumerate(paths.values())))
        for slot in range(INSTANCES):
            lb.wait_status(f"app{slot + 1}", "UP")
        progress("topology up")
        targets = {**dict(zip(paths, single_ports, strict=True)), "HAProxy": lb.port}
        identical, mix = request_lines(sqlalchemy, secret, singles.running[0][1])
        checks.append(check_identical(identical, targets, primary, standby, marker))
        items = [len(json.loads(get(targets["direct"], line)[1])) for line in mix]
        singles.stop_all()
        report(checks[-1])
        checks.append(check_connections(lb, bouncer, standby, f"{name}_ro", mix))
        report(checks[-1])
        checks.append(check_drain(lb, fleet, mix))
        report(checks[-1])
        checks.append(check_kill(lb, fleet, mix))
        report(checks[-1])
        tiers = {
            "gunicorn": fleet.pids,
            "pgbouncer": lambda: [bouncer.process.pid],
            # Only the standby's backends of this database: its startup process also replays
            # the WAL of everything else the shared primary does.
            "postgresql": lambda: _backends(standby),
            "haproxy": lambda: [lb.process.pid],
        }
        progress(f"(e)'s mix: {len(mix)} requests, {sum(items) / len(items):.1f} items on average")
        checks.append(check_throughput(lb, fleet, mix, tiers))
        checks[-1].figures["mean_items"] = round(sum(items) / len(items), 1)
        report(checks[-1])
        model = capacity(checks[-1].figures["layouts"], os.cpu_count() or 1)
        checks[-1].figures["capacity"] = model
        print(f"  capacity model: {json.dumps(model)}")
        fleet.stop_all()
        checks.append(
            check_tests(
                f"{sqlalchemy}_tests",
                standby.replace("postgresql://", "postgresql+psycopg://") + "_tests",
            )
        )
        report(checks[-1])
        started = {
            "ports": [args.replica_port, args.pgbouncer_port, *ports],
            "pids": [
                *fleet.started_pids,
                *singles.started_pids,
                bouncer.process.pid,
                lb.process.pid,
                replica.pid,
            ],
            "cluster": replica.name,
            "databases": [name, f"{name}_tests"],
        }
    checks.append(leftovers(started, hba, args.hba_digest, primary_admin))
    report(checks[-1])


def _backends(url: str) -> list[int]:
    """The pids of the server processes serving this database (PgBouncer's server connections)."""
    with psycopg.connect(url, autocommit=True) as pg:
        rows = pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


def leftovers(started: dict[str, Any], hba: Path, digest: str, admin: str) -> Check:
    """Nothing left behind: no cluster, pg_hba.conf as before, no listener, no process."""
    problems = []
    if started["cluster"] in topology.clusters():
        problems.append(f"cluster {started['cluster']} still exists")
    if topology.file_digest(hba) != digest:
        problems.append("pg_hba.conf differs from before")
    busy = [port for port in started["ports"] if not port_is_free(port)]
    if busy:
        problems.append(f"listeners remain on {busy}")
    alive = [pid for pid in started["pids"] if _alive(pid)]
    if alive:
        problems.append(f"processes remain: {alive}")
    with psycopg.connect(admin, autocommit=True) as pg:
        for name in started["databases"]:
            if pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                problems.append(f"database {name} remains")
    summary = "; ".join(problems) or (
        "no cluster, pg_hba.conf identical, no listener, no process, no database left"
    )
    return Check("cleanup", not problems, summary, short="nothing left" if not problems else "")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


STARTED = time.monotonic()


def progress(message: str) -> None:
    """One line, stamped with the seconds since the start."""
    print(f"  [{time.monotonic() - STARTED:5.1f} s] {message}", flush=True)


def report(check: Check) -> None:
    """One check's line, as it finishes."""
    progress(f"({check.name}) {'PASS' if check.passed else 'FAIL'}: {check.summary}")


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # the `with` blocks still clean up


def main() -> int:
    """Run the scale check; 0 when every check passes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--primary-port", type=int, default=int(os.environ.get("SCALE_PRIMARY_PORT", 5432))
    )
    parser.add_argument(
        "--replica-port", type=int, default=int(os.environ.get("SCALE_REPLICA_PORT", 5433))
    )
    parser.add_argument(
        "--pgbouncer-port", type=int, default=int(os.environ.get("SCALE_PGBOUNCER_PORT", 6432))
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("scale-check: FAIL: needs root (it creates a PostgreSQL cluster)", file=sys.stderr)
        return 1
    for tool in ("pg_createcluster", "pg_basebackup", "pgbouncer", "haproxy", "wrk"):
        if not any(Path(d, tool).exists() for d in [*os.environ["PATH"].split(":"), "/usr/sbin"]):
            print(f"scale-check: FAIL: {tool} is not installed", file=sys.stderr)
            return 1
    busy = [p for p in (args.replica_port, args.pgbouncer_port) if not port_is_free(p)]
    if busy:
        print(f"scale-check: FAIL: ports {busy} are in use (SCALE_REPLICA_PORT, "
              "SCALE_PGBOUNCER_PORT choose others)", file=sys.stderr)  # fmt: skip
        return 1
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{args.primary_port}/postgres", autocommit=True
    ) as pg:
        row = pg.execute("SHOW hba_file").fetchone()
    assert row is not None
    args.hba_digest = topology.file_digest(Path(row[0]))
    signal.signal(signal.SIGTERM, _stop_on_signal)
    began = time.monotonic()
    print(f"scale-check: replica :{args.replica_port}, PgBouncer :{args.pgbouncer_port}, "
          f"{INSTANCES} gunicorn instances behind HAProxy, all on 127.0.0.1")  # fmt: skip
    checks: list[Check] = []
    try:
        scale_check(args, checks)
    except Exception as error:  # the topology is torn down; say why in one line
        checks.append(Check("setup", False, f"{type(error).__name__}: {error}"))
        report(checks[-1])
    elapsed = time.monotonic() - began
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale-check.json").write_text(
        json.dumps([c.__dict__ for c in checks], indent=2, default=str)
    )
    failed = [c.name for c in checks if not c.passed]
    verdict = "FAIL " + ",".join(failed) if failed else "PASS"
    print(
        f"scale-check: {verdict}: "
        + "; ".join(f"({c.name}) {c.short if c.passed else 'FAILED'}" for c in checks)
        + f"; {elapsed:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
