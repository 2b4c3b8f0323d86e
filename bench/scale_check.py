"""`make scale-check`: the scale-out topology proven on 127.0.0.1 (docs/scaling.md).

    python -m bench.scale_check [--replica-port 5433] [--pgbouncer-port 6432]

Starts a streaming replica of the local PostgreSQL 15 (5432), PgBouncer in transaction mode with
a pool smaller than its clients, 3 gunicorn instances and HAProxy (deploy/haproxy/haproxy.cfg);
loads data through the primary (`init-db`, `demo-data`, `load-data`), waits for the standby to
replay it, then checks (a) identical answers on every path, (b) connections through PgBouncer,
(c) a drain that loses nothing, (d) kill -9 under load, (e) throughput and CPU per request of each
tier at 1, 2 and 3 instances, (g) a PgBouncer restart and (h) a PgBouncer PAUSE under traffic,
the tests that need the standby, then, on a primary and standby of its own, (s) the bounded
staleness tests and (f) a failover (the primary stopped, the standby promoted) under traffic.
Prints the capacity model, writes bench/results/scale-check.json, ends with one summary line,
and exits 1 when a check fails. Runs as root (it creates clusters and edits the primary's
pg_hba.conf, restored at the end); everything it starts is stopped by pid, every cluster dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import psycopg

from bench.scale.cleanup import leftovers
from bench.scale.data import request_lines
from bench.scale.deployment import deploy
from bench.scale.drain import check_drain
from bench.scale.failover import check_failover, check_staleness, own_pair
from bench.scale.fleet import INSTANCES
from bench.scale.identical import check_identical
from bench.scale.kill import check_kill
from bench.scale.pooler_faults import check_pooler_pause, check_pooler_restart
from bench.scale.pooling import backends, check_connections
from bench.scale.standby import file_digest
from bench.scale.standby_tests import check_tests
from bench.scale.throughput import capacity, check_throughput
from bench.scale.traffic import get
from bench.scale.verdict import Check, progress, report
from tests.live import port_is_free

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def scale_check(args: argparse.Namespace, checks: list[Check]) -> None:
    """Build the topology, run the checks, tear it all down (in the `with` blocks' exits)."""
    logs = RESULTS / "scale-check"
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        up = deploy(stack, args.primary_port, args.replica_port, args.pgbouncer_port, logs)
        lb, fleet, standby = up.lb, up.fleet, up.standby
        identical, mix = request_lines(up.sqlalchemy, up.secret, up.singles.running[0][1])
        checks.append(check_identical(identical, up.targets, up.primary, standby, up.marker))
        items = [len(json.loads(get(up.targets["direct"], line)[1])) for line in mix]
        up.singles.stop_all()
        report(checks[-1])
        checks.append(check_connections(lb, up.bouncer, standby, f"{up.name}_ro", mix))
        report(checks[-1])
        checks.append(check_drain(lb, fleet, mix))
        report(checks[-1])
        checks.append(check_kill(lb, fleet, mix))
        report(checks[-1])
        tiers = {
            "gunicorn": fleet.pids,
            "pgbouncer": lambda: [up.bouncer.pids[-1]],
            # Only the standby's backends of this database: its startup process also replays
            # the WAL of everything else the shared primary does.
            "postgresql": lambda: backends(standby),
            "haproxy": lambda: [lb.process.pid],
        }
        progress(f"(e)'s mix: {len(mix)} requests, {sum(items) / len(items):.1f} items on average")
        checks.append(check_throughput(lb, fleet, mix, tiers))
        checks[-1].figures["mean_items"] = round(sum(items) / len(items), 1)
        report(checks[-1])
        model = capacity(checks[-1].figures["layouts"], os.cpu_count() or 1)
        checks[-1].figures["capacity"] = model
        print(f"  capacity model: {json.dumps(model)}")
        # (s) and (f)'s own primary and standby are made meanwhile (their clusters dropped by
        # `stack`); (g), (h) and the tests count failures, not throughput.
        pair_stack = stack.enter_context(contextlib.ExitStack())
        with ThreadPoolExecutor(1) as background:
            pair = background.submit(own_pair, pair_stack)
            checks.append(check_pooler_restart(lb, up.bouncer, mix))
            report(checks[-1])
            checks.append(check_pooler_pause(lb, up.bouncer, mix))
            report(checks[-1])
            fleet.stop_all()
            checks.append(
                check_tests(
                    f"{up.sqlalchemy}_tests",
                    standby.replace("postgresql://", "postgresql+psycopg://") + "_tests",
                )
            )
            report(checks[-1])
            primary, replica = pair.result()
        checks.append(check_staleness(primary, replica))
        report(checks[-1])
        checks.append(check_failover(primary, replica, up.secret, logs))
        report(checks[-1])
        started = up.started()
        started["clusters"] += [primary.name, replica.name]
        started["ports"] += [primary.port, replica.port]
    checks.append(leftovers(started, up.hba, args.hba_digest, up.primary_admin))
    report(checks[-1])


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
    args.hba_digest = file_digest(Path(row[0]))
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
