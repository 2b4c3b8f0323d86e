"""(f) A primary failover under traffic, and (s) the bounded-staleness tests, on a primary and a
standby of the check's own: the machine's cluster is never stopped, and (s) needs a primary that
nothing else writes to (the machine's is never idle).

Two instances of the service name both hosts the libpq way in DATABASE_URL
(`target_session_attrs=read-write`); the second also reads from the standby (DATABASE_REPLICA_URL,
both hosts, `prefer-standby`). The primary is stopped (a fast shutdown), then the standby promoted
(`pg_promote()`), while clients ask each without pause. Every answer must be 200 or 503 with
Retry-After, every answer from 10 s after the promotion on a 200, and the workers the same
processes throughout.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.datasets import ensure_database, flask
from bench.load import Line
from bench.mixes import sample_users
from bench.scale.data import minter
from bench.scale.outage import steady
from bench.scale.processes import free_ports, run
from bench.scale.standby import (
    PG_VERSION,
    Replica,
    streaming_replica,
    throwaway_primary,
    wait_for_replay,
)
from bench.scale.standby_tests import check_tests
from bench.scale.verdict import Check, progress
from tests.live import Gunicorn, running_gunicorn

DATABASE = "failover"
SETTLE_SECONDS = 10


def own_pair(stack: contextlib.ExitStack) -> tuple[Replica, Replica]:
    """A primary of the check's own and its streaming standby, both dropped by `stack`."""
    primary_port, standby_port = free_ports(2, start=5434, stop=5500)
    pid = os.getpid()
    primary = stack.enter_context(throwaway_primary(primary_port, f"failover_primary_{pid}"))
    hba = Path(f"/etc/postgresql/{PG_VERSION}/{primary.name}/pg_hba.conf")
    standby = stack.enter_context(
        streaming_replica(primary_port, standby_port, hba, name=f"failover_standby_{pid}")
    )
    return primary, standby


def _url(*servers: Replica, attributes: str = "read-write") -> str:
    """The service's URL of the pair's database, its hosts in this order, the libpq way."""
    hosts = "&".join(f"host=127.0.0.1:{server.port}" for server in servers)
    return f"postgresql+psycopg://postgres@/{DATABASE}?{hosts}&target_session_attrs={attributes}"


def check_staleness(primary: Replica, standby: Replica) -> Check:
    """(s) tests/test_staleness.py against the pair: paused, slow and cut-off replay, idle."""
    database = "staleness_tests"
    return check_tests(
        f"postgresql+psycopg://postgres@127.0.0.1:{primary.port}/{database}",
        f"postgresql+psycopg://postgres@127.0.0.1:{standby.port}/{database}",
        modules=("tests/test_staleness.py",),
        name="s",
    )


def check_failover(primary: Replica, standby: Replica, secret: str, logs: Path) -> Check:
    """(f) Stop the primary, promote the standby, under traffic; the answers and the workers."""
    direct = f"postgresql+psycopg://postgres@127.0.0.1:{primary.port}/{DATABASE}"
    ensure_database(direct, DATABASE)
    flask(direct, "init-db")
    flask(direct, "demo-data", "--centers", "1", "--students", "60", "--staff", "4")
    wait_for_replay(
        f"postgresql://postgres@127.0.0.1:{primary.port}/{DATABASE}",
        f"postgresql://postgres@127.0.0.1:{standby.port}/{DATABASE}",
    )
    token = minter(secret)
    students, _ = sample_users(direct, 20, seed=7)
    lines = [Line("/users/me/encounters", token(student, "Student")) for student in students]
    deployments = {
        "primary only": {},
        # Reads on the standby while it is one; on the primary (the promoted standby) after.
        "with the replica": {
            "DATABASE_REPLICA_URL": _url(standby, primary, attributes="prefer-standby")
        },
    }
    with contextlib.ExitStack() as running:
        servers = {}
        for number, (name, environment) in enumerate(deployments.items(), start=1):
            log = logs / f"failover{number}.log"
            servers[name] = running.enter_context(
                running_gunicorn(
                    _url(primary, standby), secret, log, workers=2, environment=environment
                )
            )
        workers = {name: _workers(server) for name, server in servers.items()}
        with contextlib.ExitStack() as load:
            traffic = {
                name: load.enter_context(steady(server.port, lines, clients=3))
                for name, server in servers.items()
            }
            time.sleep(2)
            for each in traffic.values():
                each.mark("stopped")
            run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, primary.name, "stop",
                 "-m", "fast"])  # fmt: skip
            time.sleep(2)
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{standby.port}/postgres", autocommit=True
            ) as pg:
                pg.execute("SELECT pg_promote()")
            for each in traffic.values():
                each.mark("promoted")
            progress("(f) primary stopped, standby promoted")
            time.sleep(SETTLE_SECONDS + 1)
        restarted = {name: _workers(server) != workers[name] for name, server in servers.items()}
    figures: dict[str, Any] = {}
    lines_said = []
    for name, each in traffic.items():
        figures[name] = each.verdict("promoted", SETTLE_SECONDS)
        figures[name]["workers_restarted"] = restarted[name]
        outage = each.events["promoted"] - each.events["stopped"]
        figures[name]["seconds_without_primary"] = round(outage, 2)
        said = figures[name]
        lines_said.append(
            f"{name}: {said['requests']} requests, {said['503']} answers 503 "
            f"({said['other_failures']} other failures), the first 200 "
            f"{said['first_200_after_seconds']:.3f} s after the promotion, only 200 from "
            f"{said['all_200_after_seconds']:.2f} s, workers restarted: {restarted[name]}"
        )
    passed = all(f.pop("passed") and not f["workers_restarted"] for f in figures.values())
    outage = figures["primary only"]["seconds_without_primary"]
    summary = f"primary down {outage:.1f} s until the promotion; " + "; ".join(lines_said)
    settled = max(f["all_200_after_seconds"] for f in figures.values())
    short = "failover " + ", ".join(f"{f['503']}/{f['requests']} 503" for f in figures.values())
    short += f", all 200 after promotion + {settled:.1f} s"
    return Check("f", passed, summary, figures, short)


def _workers(server: Gunicorn) -> list[int]:
    return sorted(worker.pid for worker in server.workers())
