"""The standby: a second PostgreSQL 15 cluster of this machine, streaming from the primary.

`pg_createcluster` + `pg_basebackup -R`, after one marked `replication` line first in the primary's
`pg_hba.conf`. Each is a context manager that undoes exactly what it did: the line removed (the
file restored byte for byte), the cluster dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.scale.processes import run, wait_for_port

PG_VERSION = "15"
HBA_MARK = "# encounters scale-check"


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


@dataclass
class Replica:
    """A cluster of this machine's PostgreSQL: a hot standby streaming from the primary, or a
    throwaway primary."""

    name: str
    port: int
    data: Path

    @property
    def pid(self) -> int:
        """The standby's postmaster."""
        return int((self.data / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def throwaway_primary(port: int, name: str) -> Iterator[Replica]:
    """A primary cluster of its own on `port` (trusting 127.0.0.1, replication too), dropped after.

    Nothing but its user writes there (autovacuum off, as on the machine's own cluster): a
    primary that can be idle, stopped and failed over without touching the machine's own cluster.
    """
    _refuse_existing(name)
    run([
        "pg_createcluster", "--start-conf", "manual", "-p", str(port), PG_VERSION, name,
        "-o", "fsync=off", "-o", "autovacuum=off", "--", "--no-sync",
    ])  # fmt: skip
    try:
        hba = Path(f"/etc/postgresql/{PG_VERSION}/{name}/pg_hba.conf")
        hba.write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n"
        )
        run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, name, "start"])
        wait_for_port(port)
        yield Replica(name, port, Path(f"/var/lib/postgresql/{PG_VERSION}/{name}"))
    finally:
        _drop(name)


def _refuse_existing(name: str) -> None:
    if name in clusters():
        raise RuntimeError(f"a cluster {PG_VERSION}/{name} exists already")


def _drop(name: str) -> None:
    subprocess.run(["pg_dropcluster", "--stop", PG_VERSION, name], check=False, capture_output=True)


@contextlib.contextmanager
def streaming_replica(
    primary_port: int, port: int, primary_hba: Path, name: str = ""
) -> Iterator[Replica]:
    """`pg_createcluster` + `pg_basebackup -R` on `port`, dropped after (`pg_dropcluster`)."""
    name = name or f"scale_{os.getpid()}"
    _refuse_existing(name)
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
        _drop(name)


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
