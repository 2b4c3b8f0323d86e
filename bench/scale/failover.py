"""(f) A primary failover under traffic, and (s) the bounded-staleness tests, on a primary and a
standby of the check's own: the machine's cluster is never stopped, and its primary never idle.

The service's DATABASE_URL names both hosts the libpq way, `target_session_attrs=read-write`:
the primary is stopped (a fast shutdown), then the standby promoted (`pg_promote()`), while
clients ask without pause. Every answer must be 200 or 503 with Retry-After, every answer from
10 s after the promotion on a 200, and the workers the same processes throughout.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

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
from tests.live import running_gunicorn

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


def _url(*servers: Replica, database: str = DATABASE) -> str:
    hosts = "&".join(f"host=127.0.0.1:{server.port}" for server in servers)
    return f"postgresql+psycopg://postgres@/{database}?{hosts}&target_session_attrs=read-write"


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
    with running_gunicorn(
        _url(primary, standby), secret, logs / "failover.log", workers=2
    ) as server:
        workers = sorted(worker.pid for worker in server.workers())
        with steady(server.port, lines) as traffic:
            time.sleep(2)
            traffic.mark("stopped")
            run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, primary.name, "stop",
                 "-m", "fast"])  # fmt: skip
            time.sleep(2)
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{standby.port}/postgres", autocommit=True
            ) as pg:
                pg.execute("SELECT pg_promote()")
            traffic.mark("promoted")
            progress("(f) primary stopped, standby promoted")
            time.sleep(SETTLE_SECONDS + 1)
        same_workers = sorted(worker.pid for worker in server.workers()) == workers
    figures = traffic.verdict("promoted", SETTLE_SECONDS)
    outage = traffic.events["promoted"] - traffic.events["stopped"]
    figures.update(same_workers=same_workers, seconds_without_primary=round(outage, 2))
    passed = figures.pop("passed") and same_workers
    summary = (
        f"{figures['requests']} requests; primary down {outage:.1f} s until the promotion: "
        f"{figures['503']} answers 503 (all with Retry-After: {figures['other_failures'] == 0}), "
        f"the first 200 {figures['first_200_after_seconds']:.3f} s after the promotion, only 200 "
        f"from {figures['all_200_after_seconds']:.2f} s; "
        f"workers never restarted: {same_workers}"
    )
    short = f"failover {figures['503']}/{figures['requests']} 503, 200 after promotion + "
    short += f"{figures['all_200_after_seconds']:.1f} s"
    return Check("f", passed, summary, figures, short)
