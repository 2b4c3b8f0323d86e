"""The cleanup check: the run left nothing behind on the machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.scale.standby import clusters, file_digest
from bench.scale.verdict import Check
from tests.live import port_is_free


def leftovers(started: dict[str, Any], hba: Path, digest: str, admin: str) -> Check:
    """Nothing left behind: no cluster, pg_hba.conf as before, no listener, no process."""
    problems = []
    remaining = set(started["clusters"]) & set(clusters())
    if remaining:
        problems.append(f"clusters {sorted(remaining)} still exist")
    if file_digest(hba) != digest:
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
