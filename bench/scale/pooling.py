"""(b) PgBouncer pooling: under load, the standby sees no more server connections than the pool."""

from __future__ import annotations

import time

import psycopg

from bench.load import Line
from bench.scale.balancer import HAProxy
from bench.scale.fleet import INSTANCES, TOTAL_WORKERS
from bench.scale.pooler import PgBouncer
from bench.scale.traffic import wrk
from bench.scale.verdict import Check

SERVICE_POOL_SIZE = 5  # service.db.make_engine's pool_size
# The server processes serving this database: PgBouncer's server connections.
CLIENT_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def backends(url: str) -> list[int]:
    """The pids of the server processes serving this database (PgBouncer's server connections)."""
    with psycopg.connect(url, autocommit=True) as pg:
        rows = pg.execute(CLIENT_BACKENDS).fetchall()
    return [row[0] for row in rows]


def check_connections(
    haproxy: HAProxy,
    bouncer: PgBouncer,
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
            servers.append(len(standby.execute(CLIENT_BACKENDS).fetchall()))
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
