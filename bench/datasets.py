"""The benchmark's datasets: one PostgreSQL database per size, built once and reused.

A size is a `flask demo-data` shape (centers, students and staff scale together; 56 days of
encounters). The database's `bench_dataset` table records the shape it was built with and its
start day, so a rerun reuses a database that already holds that size (`--rebuild` forces a new
one). `flask init-db` runs every time: a new migration (an index, say) is applied before measuring.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
# The server the size databases live on unless the command line names another.
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DAYS = 56
SEED = 7


@dataclass(frozen=True)
class Size:
    """A dataset shape; about 5,000 encounters per center with 56 days."""

    name: str
    centers: int
    students: int
    staff: int
    days: int = DAYS
    seed: int = SEED

    def demo_arguments(self) -> list[str]:
        """The `flask demo-data` options that build it."""
        return [
            f"--centers={self.centers}",
            f"--students={self.students}",
            f"--staff={self.staff}",
            f"--days={self.days}",
            f"--seed={self.seed}",
            "--replace",
        ]


SIZES = {
    size.name: size
    for size in (
        Size("5k", centers=1, students=200, staff=4),
        Size("10k", centers=2, students=1_000, staff=20),
        Size("100k", centers=20, students=10_000, staff=200),
        Size("1m", centers=200, students=100_000, staff=2_000),
    )
}


@dataclass(frozen=True)
class Dataset:
    """A database holding one size: its URL, start day and row counts."""

    size: Size
    url: str
    start: date
    encounters: int
    bookings: int
    users: int
    built_seconds: float | None  # None when reused


def libpq_url(url: str) -> str:
    """The plain libpq form of a SQLAlchemy URL (`postgresql+psycopg://` -> `postgresql://`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url`."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def ensure_database(server_url: str, name: str) -> None:
    """Create database `name` unless it exists."""
    with psycopg.connect(libpq_url(database_url(server_url, "postgres")), autocommit=True) as pg:
        if pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        pg.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name` (and its sessions) if it exists."""
    with psycopg.connect(libpq_url(database_url(server_url, "postgres")), autocommit=True) as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flask(url: str, *arguments: str) -> str:
    """Run `flask --app wsgi ARGUMENTS` on the database at `url`; return its output."""
    # The migration job's view: the database settings alone, no token key (the data commands
    # need none), and nothing of an outer DATABASE_* (a replica, say) leaks in.
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_"))},
        "DATABASE_URL": url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"flask {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def prepare(size: Size, url: str, *, rebuild: bool, log: bool = True) -> Dataset:
    """Migrate the database at `url` and make it hold `size` (building only when needed)."""
    flask(url, "init-db")
    with psycopg.connect(libpq_url(url), autocommit=True) as pg:
        pg.execute("CREATE TABLE IF NOT EXISTS bench_dataset (shape jsonb, start date)")
        recorded = pg.execute("SELECT shape, start FROM bench_dataset").fetchone()
        built = None
        if rebuild or recorded is None or recorded[0] != asdict(size):
            if log:
                print(f"[{size.name}] building: flask demo-data {' '.join(size.demo_arguments())}")
            began = time.perf_counter()
            pg.execute("DELETE FROM bench_dataset")
            output = flask(url, "demo-data", *size.demo_arguments())
            built = time.perf_counter() - began
            if log:
                print(f"[{size.name}] {output}")
            start = pg.execute("SELECT min(starts_at)::date FROM encounters").fetchone()
            assert start is not None
            pg.execute(
                "INSERT INTO bench_dataset VALUES (%s, %s)", (json.dumps(asdict(size)), start[0])
            )
        # No VACUUM or ANALYZE of our own: the service is measured on what demo-data leaves,
        # as a user gets it (autovacuum is off on this machine's server, and on many others).
        start_row = pg.execute("SELECT start FROM bench_dataset").fetchone()
        counts = pg.execute(
            "SELECT (SELECT count(*) FROM encounters), (SELECT count(*) FROM bookings),"
            " (SELECT count(*) FROM users)"
        ).fetchone()
    assert start_row is not None and counts is not None
    encounters, bookings, users = counts
    dataset = Dataset(size, url, start_row[0], encounters, bookings, users, built_seconds=built)
    if log and built is None:
        print(f"[{size.name}] reusing {make_url(url).database}: {dataset.encounters:,} encounters")
    return dataset
