"""The standard world in a database, as a user gets it: `init-db`, then `load-data` of its document.

The document is bench/world.py's (issue 16's standard world: 200 centers, 100,000 students, 2,000
staff, 134,829 encounters, 393,827 bookings over 56 days; about 100 MB), written to a temporary
file and loaded with the product's own commands. Nothing else touches the database: no VACUUM or
ANALYZE of the benchmark's own, so what is measured is what `load-data` leaves. A table
`bench_world` records the recipe (the world's scale and seed, and the last commit of the loading
code: service/admin, migrations, bench/world.py), so a rerun reuses the database until one of
them changes (`--rebuild` loads anew).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg

from bench.datasets import (
    ROOT,
    Dataset,
    Size,
    database_url,
    drop_database,
    ensure_database,
    flask,
    libpq_url,
)
from bench.world import CENTERS, STAFF, START, STUDENTS, write_world

WORLD = Size("world", centers=CENTERS, students=STUDENTS, staff=STAFF, days=56, seed=7)


def loader_revision() -> str:
    """The last commit of the code that makes and loads the world (a new one: a new load)."""
    done = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--", "service/admin", "migrations", "bench/world.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


def prepare_world(server_url: str, name: str, *, rebuild: bool) -> Dataset:
    """Database `name` holding the world, as `init-db` and `load-data` leave it (loaded once)."""
    url = database_url(server_url, name)
    scale = 1.0
    recipe = {"seed": WORLD.seed, "scale": scale, "loader": loader_revision()}
    ensure_database(server_url, name)
    with psycopg.connect(libpq_url(url), autocommit=True) as pg:
        pg.execute("CREATE TABLE IF NOT EXISTS bench_world (recipe jsonb)")
        recorded = pg.execute("SELECT * FROM bench_world").fetchone()  # an older one: any column
    built = None
    if rebuild or recorded is None or recorded[0] != recipe:
        # A new database: the world goes into empty tables, as a user's first import does.
        drop_database(server_url, name)
        ensure_database(server_url, name)
        began = time.perf_counter()
        flask(url, "init-db")
        with tempfile.TemporaryDirectory(prefix="encounters-world-") as folder:
            path = Path(folder, "world.json")
            with path.open("w", encoding="utf-8") as out:
                write_world(out, scale, WORLD.seed)
            print(f"[world] load-data of a {path.stat().st_size / 1e6:.0f} MB document", flush=True)
            print(f"[world] {flask(url, 'load-data', '--quiet', str(path))}", flush=True)
        built = time.perf_counter() - began
        with psycopg.connect(libpq_url(url), autocommit=True) as pg:
            pg.execute("CREATE TABLE bench_world (recipe jsonb)")
            pg.execute("INSERT INTO bench_world VALUES (%s)", (json.dumps(recipe),))
    flask(url, "init-db")  # a new migration is applied before measuring
    with psycopg.connect(libpq_url(url), autocommit=True) as pg:
        counts = pg.execute(
            "SELECT (SELECT count(*) FROM encounters), (SELECT count(*) FROM bookings),"
            " (SELECT count(*) FROM users),"
            " (SELECT max(starts_at)::date - min(starts_at)::date + 1 FROM encounters)"
        ).fetchone()
    assert counts is not None
    encounters, bookings, users, days = counts
    print(
        f"[world] {encounters:,} encounters over {days} days, {bookings:,} bookings, "
        f"{users:,} users",
        flush=True,
    )
    # The mixes' windows start on days that have encounters after them (the generator spreads
    # them over the first 28 of its 56 days).
    size = replace(WORLD, days=days)
    return Dataset(size, url, START.date(), encounters, bookings, users, built_seconds=built)
