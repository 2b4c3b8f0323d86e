"""The scale-out topology on 127.0.0.1, from Debian's real components, for `make scale-check`.

A streaming replica (PostgreSQL 15: `pg_createcluster`, `pg_basebackup -R`), PgBouncer in
transaction mode, and HAProxy with `deploy/haproxy/haproxy.cfg`. Each piece is a context manager
that undoes exactly what it did, by pid or by name: the replication line it added to the primary's
`pg_hba.conf`, the cluster it created, the processes it started.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from tests.live import port_is_free

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
PG_VERSION = "15"
HBA_MARK = "# encounters scale-check"


def free_ports(count: int, start: int = 28600, stop: int = 28800) -> list[int]:
    """`count` ports of [start, stop) that are free right now.

    Below the kernel's ephemeral range (32768 and up): there, an outgoing connection (HAProxy's
    health checks, say) may take a port between this check and gunicorn's bind.
    """
    found = [port for port in range(start, stop) if port_is_free(port)][:count]
    if len(found) < count:
        raise RuntimeError(f"fewer than {count} free ports in {start}-{stop - 1}")
    return found


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop_process(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after `timeout`; always reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds so far of these processes (gone ones count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def with_children(pid: int) -> list[int]:
    """`pid` and every process below it."""
    try:
        process = psutil.Process(pid)
        return [pid, *(child.pid for child in process.children(recursive=True))]
    except psutil.Error:
        return []


def clusters() -> list[str]:
    """The names of PostgreSQL's clusters of this version (`pg_lsclusters`)."""
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[1] for line in listing.splitlines() if line.split()[:1] == [PG_VERSION]]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def replication_allowed(primary: str) -> Iterator[Path]:
    """The primary's pg_hba.conf with one marked `replication` line, restored byte for byte."""
    with psycopg.connect(primary, autocommit=True) as pg:
        row = pg.execute("SHOW hba_file").fetchone()
    assert row is not None
    hba = Path(row[0])
    original = hba.read_bytes()
    if HBA_MARK.encode() in original:
        raise RuntimeError(
            f"{hba} holds a line marked '{HBA_MARK}' from an interrupted run: remove it first"
        )
    line = f"host replication postgres 127.0.0.1/32 trust {HBA_MARK} {os.getpid()}\n"
    # Rules match top down: the line goes first so no earlier rule can shadow it.
    hba.write_bytes(line.encode() + original)
    try:
        _reload(primary)
        yield hba
    finally:
        hba.write_bytes(original)
        _reload(primary)


def _reload(url: str, timeout: float = 10) -> None:
    # pg_reload_conf() only signals the postmaster: wait until the new files are in force.
    with psycopg.connect(url, autocommit=True) as pg:
        before = pg.execute("SELECT pg_conf_load_time()").fetchone()
        pg.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            # A new session reads the reloaded configuration (this one may lag behind).
            with psycopg.connect(url, autocommit=True) as fresh:
                if fresh.execute("SELECT pg_conf_load_time()").fetchone() != before:
                    return
    raise RuntimeError(f"PostgreSQL did not reload its configuration in {timeout} s")


def run(command: list[str]) -> str:
    """Run a command to completion; its output, or an error carrying what it printed."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{command[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass
class Replica:
    """A hot standby cluster of this machine's PostgreSQL, streaming from the primary."""

    name: str
    port: int
    data: Path

    @property
    def pid(self) -> int:
        """The standby's postmaster."""
        return int((self.data / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def streaming_replica(primary_port: int, port: int, primary_hba: Path) -> Iterator[Replica]:
    """`pg_createcluster` + `pg_basebackup -R` on `port`, dropped after (`pg_dropcluster`)."""
    name = f"scale_{os.getpid()}"
    if name in clusters():
        raise RuntimeError(f"a cluster {PG_VERSION}/{name} exists already")
    # --no-sync: a throwaway cluster need not wait for the disk (initdb, then its files replaced).
    run([
        "pg_createcluster", "--start-conf", "manual", "-p", str(port), PG_VERSION, name,
        "--", "--no-sync",
    ])  # fmt: skip
    try:
        data = Path(f"/var/lib/postgresql/{PG_VERSION}/{name}")
        # The standby gets the primary's files (into the emptied folder, which keeps its owner
        # and mode); its own configuration stays in /etc.
        for entry in data.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        run([
            "runuser", "-u", "postgres", "--", "pg_basebackup", "-h", "127.0.0.1",
            "-p", str(primary_port), "-U", "postgres", "-D", str(data), "-R",
            "-X", "stream", "-c", "fast", "--no-sync",
        ])  # fmt: skip
        # The primary's trust rules, so clients reach the standby as they reach the primary.
        conf = Path(f"/etc/postgresql/{PG_VERSION}/{name}")
        shutil.copyfile(primary_hba, conf / "pg_hba.conf")
        shutil.chown(conf / "pg_hba.conf", "postgres", "postgres")
        run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, name, "start"])
        wait_for_port(port)
        yield Replica(name, port, data)
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", PG_VERSION, name], check=False, capture_output=True
        )


def wait_for_replay(primary: str, replica: str, timeout: float = 60) -> float:
    """Wait until the standby has replayed the primary's current WAL position; seconds taken."""
    began = time.monotonic()
    with psycopg.connect(primary, autocommit=True) as pg:
        row = pg.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    with psycopg.connect(replica, autocommit=True) as standby:
        while time.monotonic() - began < timeout:
            done = standby.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            ).fetchone()
            if done and done[0]:
                return time.monotonic() - began
            time.sleep(0.05)
    raise RuntimeError(f"the standby did not replay {target} in {timeout} s")


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


@dataclass
class HAProxy:
    """A running HAProxy and its runtime API."""

    port: int
    process: subprocess.Popen[bytes]
    socket_path: Path

    def command(self, line: str) -> str:
        """One runtime API command; its answer."""
        with socket.socket(socket.AF_UNIX) as runtime:
            runtime.settimeout(5)
            runtime.connect(str(self.socket_path))
            runtime.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := runtime.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """`show stat` of the backend's servers, by name."""
        lines = self.command("show stat").lstrip("# ").splitlines()
        rows = csv.DictReader(line for line in lines if line.strip())
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == "encounters" and row["svname"] not in ("BACKEND", "FRONTEND")
        }

    def set_state(self, server: str, state: str) -> None:
        """`set server encounters/<server> state ready|drain|maint`."""
        answer = self.command(f"set server encounters/{server} state {state}").strip()
        if answer:
            raise RuntimeError(f"HAProxy refused 'state {state}' for {server}: {answer}")

    def wait_status(self, server: str, prefix: str, timeout: float = 20) -> float:
        """Seconds until the server's status starts with `prefix` (UP, DOWN, MAINT, DRAIN)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.servers()[server]["status"].startswith(prefix):
                return time.monotonic() - began
            time.sleep(0.05)
        status = self.servers()[server]["status"]
        raise RuntimeError(f"{server} is {status}, not {prefix}, after {timeout} s")


@contextlib.contextmanager
def haproxy(port: int, servers: list[str]) -> Iterator[HAProxy]:
    """HAProxy with deploy/haproxy/haproxy.cfg, its addresses given by the environment."""
    folder = Path(tempfile.mkdtemp(prefix="encounters-haproxy-"))
    try:
        runtime = folder / "runtime.sock"
        environment = {
            **os.environ,
            "HAPROXY_BIND": f"127.0.0.1:{port}",
            "HAPROXY_RUNTIME_SOCKET": str(runtime),
            **{f"APP{number}": server for number, server in enumerate(servers, start=1)},
        }
        log = folder / "haproxy.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(HAPROXY_CONFIG)],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port)
            yield HAProxy(port, process, runtime)
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
