"""PgBouncer in transaction mode, in a folder of its own, stopped by pid and its folder removed."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.scale.processes import wait_for_port
from tests.live import stop_process


@dataclass
class PgBouncer:
    """A running PgBouncer: its port, process and the aliases it serves."""

    port: int
    process: subprocess.Popen[bytes]
    pool_size: int
    log: Path
    user: str = "postgres"

    def url(self, alias: str) -> str:
        """A SQLAlchemy URL of one of its databases."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{alias}"

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console (simple query protocol: psql)."""
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "pgbouncer",
             "--csv", "-c", f"SHOW {what}"],
            capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
        return list(csv.DictReader(done.stdout.splitlines()))


@contextlib.contextmanager
def pgbouncer(
    port: int,
    databases: dict[str, str],
    pool_size: int,
    query_wait_timeout: int,
    user: str = "postgres",
) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode; `databases` maps alias to a libpq connection string.

    Clients log in as `user` (trusted, as the local PostgreSQL trusts it).
    """
    folder = Path(tempfile.mkdtemp(prefix="encounters-pgbouncer-"))
    try:
        aliases = "\n".join(f"{alias} = {target}" for alias, target in databases.items())
        (folder / "users.txt").write_text(f'"{user}" ""\n')
        (folder / "pgbouncer.ini").write_text(
            f"""[databases]
{aliases}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
admin_users = {user}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
query_wait_timeout = {query_wait_timeout}
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile =
pidfile =
"""
        )
        # PgBouncer will not run as root: it drops to postgres itself (same pid, no fork).
        as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
        if as_user:
            shutil.chown(folder, "postgres")
        log = folder / "pgbouncer.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["pgbouncer", *as_user, str(folder / "pgbouncer.ini")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port)
            yield PgBouncer(port, process, pool_size, log, user)
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
