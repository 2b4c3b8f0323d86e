"""The topology the checks run on: a streaming replica, the data loaded through the primary,
PgBouncer, HAProxy with the fleet behind it, and one single-worker instance per path of (a)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.datasets import drop_database, ensure_database, flask
from bench.scale.balancer import HAProxy, haproxy
from bench.scale.data import import_document
from bench.scale.fleet import INSTANCES, TOTAL_WORKERS, Fleet
from bench.scale.pooler import PgBouncer, pgbouncer
from bench.scale.processes import free_ports
from bench.scale.standby import Replica, replication_allowed, streaming_replica, wait_for_replay
from bench.scale.verdict import progress

PGBOUNCER_POOL = 3  # per database: smaller than the 6 workers' connections
PGBOUNCER_QUERY_WAIT = 5  # seconds: the service's pool_timeout


@dataclass
class Deployment:
    """What the checks reach, and what the cleanup check looks for afterwards."""

    name: str
    primary_admin: str
    primary: str
    standby: str
    sqlalchemy: str
    secret: str
    marker: str
    hba: Path
    replica: Replica
    bouncer: PgBouncer
    lb: HAProxy
    fleet: Fleet
    singles: Fleet
    targets: dict[str, int]
    ports: list[int]

    def started(self) -> dict[str, Any]:
        """The ports, processes, cluster and databases of the run (read while they are up)."""
        return {
            "ports": self.ports,
            "pids": [
                *self.fleet.started_pids,
                *self.singles.started_pids,
                *self.bouncer.pids,
                self.lb.process.pid,
                self.replica.pid,
            ],
            "clusters": [self.replica.name],
            "databases": [self.name, f"{self.name}_tests"],
        }


def deploy(
    stack: contextlib.ExitStack,
    primary_port: int,
    replica_port: int,
    pgbouncer_port: int,
    logs: Path,
) -> Deployment:
    """Build the topology; each piece is undone by `stack`, in reverse order."""
    primary_admin = f"postgresql://postgres@127.0.0.1:{primary_port}/postgres"
    name = f"scale_check_{os.getpid()}"
    primary = f"postgresql://postgres@127.0.0.1:{primary_port}/{name}"
    standby = f"postgresql://postgres@127.0.0.1:{replica_port}/{name}"
    sqlalchemy = primary.replace("postgresql://", "postgresql+psycopg://")
    secret = secrets.token_urlsafe(48)
    hba = stack.enter_context(replication_allowed(primary_admin))
    replica = stack.enter_context(streaming_replica(primary_port, replica_port, hba))
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
    replay = wait_for_replay(primary, standby)
    progress(
        f"loaded through the primary in {time.monotonic() - began:.1f} s; "
        f"the standby replayed it {replay:.2f} s after the last commit"
    )
    bouncer = stack.enter_context(
        pgbouncer(
            pgbouncer_port,
            {name: f"host=127.0.0.1 port={primary_port} dbname={name}",
             f"{name}_ro": f"host=127.0.0.1 port={replica_port} dbname={name}"},
            PGBOUNCER_POOL, PGBOUNCER_QUERY_WAIT,
        )
    )  # fmt: skip
    ports = free_ports(7)
    app_ports, single_ports, lb_port = ports[:3], ports[3:6], ports[6]
    lb = stack.enter_context(haproxy(lb_port, [f"127.0.0.1:{p}" for p in app_ports]))
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
    return Deployment(
        name, primary_admin, primary, standby, sqlalchemy, secret, marker, hba, replica,
        bouncer, lb, fleet, singles, targets, [replica_port, pgbouncer_port, *ports],
    )  # fmt: skip
