"""PgBouncer in transaction mode, in a folder of its own, stopped by pid and its folder removed."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.scale.processes import wait_for_port
from tests.live import stop_process


@dataclass
class PgBouncer:
    """A running PgBouncer: its port, process and the aliases it serves."""

    port: int
    pool_size: int
    folder: Path
    user: str = "postgres"
    process: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)  # every process it ran as, for the cleanup

    @property
    def log(self) -> Path:
        """What PgBouncer wrote, every run of it."""
        return self.folder / "pgbouncer.log"

    def start(self) -> None:
        """Start PgBouncer on its configuration; return once it listens."""
        # PgBouncer will not run as root: it drops to postgres itself (same pid, no fork).
        as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["pgbouncer", *as_user, str(self.folder / "pgbouncer.ini")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pids.append(self.process.pid)
        wait_for_port(self.port)

    def stop(self) -> None:
        """SIGTERM, by pid, and reaped."""
        if self.process is not None:
            stop_process(self.process)

    def admin(self, command: str) -> None:
        """One command on the admin console (`PAUSE`, `RESUME`)."""
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "pgbouncer",
             "-c", command],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip

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
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        bouncer = PgBouncer(port, pool_size, folder, user)
        try:
            bouncer.start()
            yield bouncer
        finally:
            bouncer.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
