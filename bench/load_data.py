"""`make bench-load`: load-data of the standard world beside a plain COPY of the same rows.

On one PostgreSQL server, side by side in one run (docs/data.md keeps the figures):
- COPY: the world's rows, prepared as COPY text beforehand (not timed), copied into a freshly
  migrated database (the same tables, keys, indexes and triggers), then `VACUUM ANALYZE`.
- load-data: `flask load-data -q` of the world's document into a freshly migrated database: wall
  time and peak RSS, then dead and live rows and statistics per table.
- delta: 1,000 new bookings into that loaded world: wall time, and encounter rows rewritten.
- twice (`--twice`): peak RSS of a document twice as large.
Databases are named PREFIX_copy, PREFIX_load, PREFIX_twice, and dropped at the end (`--keep`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.datasets import (
    DEFAULT_SERVER,
    ROOT,
    database_url,
    drop_database,
    ensure_database,
    libpq_url,
)
from bench.datasets import flask as run_flask
from bench.world import write_world
from service.admin.fast_records import fast_record
from service.admin.json_stream import DocumentReader
from service.admin.records import SCHEMAS, staged_rows

TABLES = ("centers", "users", "staff_centers", "encounters", "bookings")
_STAGE_TO_TABLE = {"centers": "centers", "users": "users", "staff": "staff_centers",
                   "encounters": "encounters", "bookings": "bookings"}  # fmt: skip
# The columns each staged row feeds, as `staged_rows` orders them (pos and label dropped).
_COLUMNS = {
    "centers": "id, reference_id, name",
    "users": "id, email, email_key, reference_id, reference_key, role, center_id, current_unit",
    "staff_centers": "user_id, center_id",
    "encounters": "id, center_id, unit_number, starts_at, ends_at, is_online, capacity, cancelled",
    "bookings": "encounter_id, user_id, cancelled",
}


def world(directory: Path, scale: float) -> Path:
    """The world's document at `scale`, written once into `directory`."""
    path = directory / f"world-{scale:g}.json"
    if not path.exists():
        with open(path.with_suffix(".tmp"), "w", encoding="utf-8") as out:
            write_world(out, scale)
        path.with_suffix(".tmp").rename(path)
    return path


def copy_text(document: Path) -> dict[str, str]:
    """The world's rows as COPY text, per table (what a plain COPY load would be given)."""
    buffers = {table: io.StringIO() for table in TABLES}
    with open(document, "rb") as source:
        for item in DocumentReader(source, tuple(SCHEMAS)).items():
            if item.index < 0:
                continue
            record = fast_record(item.key, item.value) or SCHEMAS[item.key].load(item.value)
            for kind, row in staged_rows(item.key, item.index, item.value, record):
                line = "\t".join(r"\N" if v is None else str(v) for v in row[2:])
                buffers[_STAGE_TO_TABLE[kind]].write(line + "\n")
    return {table: buffer.getvalue() for table, buffer in buffers.items()}


def timed_copy(url: str, rows: dict[str, str]) -> float:
    """Seconds to COPY `rows` into the migrated database at `url`, then VACUUM ANALYZE it."""
    began = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as pg:
        for table in TABLES:
            with pg.cursor().copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                copy.write(rows[table])
        pg.commit()
        pg.autocommit = True
        pg.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


def timed_load(url: str, document: Path) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds of `flask load-data -q DOCUMENT` at `url`."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_"))},
        "DATABASE_URL": url,
    }
    began = time.perf_counter()
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "load-data", "-q", str(document)]
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - began
    if status:
        raise RuntimeError(f"load-data of {document} failed with status {status}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def table_state(url: str) -> dict[str, dict[str, Any]]:
    """Live rows, dead rows, updates and whether statistics exist, per table."""
    with psycopg.connect(libpq_url(url), autocommit=True) as pg:
        pg.execute("SELECT pg_stat_clear_snapshot()")
        rows = pg.execute(
            "SELECT relname, n_live_tup, n_dead_tup, n_tup_upd,"
            " (SELECT count(*) FROM pg_stats s WHERE s.tablename = t.relname) > 0"
            " FROM pg_stat_user_tables t WHERE relname = ANY(%s)",
            (list(TABLES),),
        ).fetchall()
    return {
        name: {"live": live, "dead": dead, "updates": updates, "analyzed": analyzed}
        for name, live, dead, updates, analyzed in rows
    }


def delta(url: str, directory: Path) -> Path:
    """A document of 1,000 new bookings (random encounters and students of the loaded world)."""
    with psycopg.connect(libpq_url(url)) as pg:
        pairs = pg.execute(
            "SELECT e.id, u.id FROM"
            " (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n FROM encounters) e"
            " JOIN (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n FROM users"
            " WHERE role = 'Student') u ON u.n = e.n WHERE e.n <= 1000 AND NOT EXISTS"
            " (SELECT 1 FROM bookings b WHERE b.encounter_id = e.id AND b.user_id = u.id)"
        ).fetchall()
    path = directory / "delta.json"
    bookings = [{"EncounterId": str(e), "UserId": str(u)} for e, u in pairs]
    path.write_text(json.dumps({"bookings": bookings}))
    return path


def fresh(server: str, name: str) -> str:
    """A new, migrated database `name` on `server`."""
    drop_database(server, name)
    ensure_database(server, name)
    url = database_url(server, name)
    run_flask(url, "init-db")
    return url


def main() -> None:
    """Measure and print the figures of docs/data.md's load-data section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--prefix", default="bench_load")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--twice", action="store_true", help="also a document twice as large")
    parser.add_argument("--directory", type=Path, default=Path("/tmp/bench-load"))
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    arguments = parser.parse_args()
    arguments.directory.mkdir(parents=True, exist_ok=True)
    server, prefix = arguments.server, arguments.prefix
    document = world(arguments.directory, arguments.scale)
    print(f"world: {document} ({document.stat().st_size / 1e6:.0f} MB), load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    copy_url = fresh(server, f"{prefix}_copy")
    copy_seconds = timed_copy(copy_url, copy_text(document))
    load_url = fresh(server, f"{prefix}_load")
    load_seconds, load_rss, load_cpu = timed_load(load_url, document)
    print(f"COPY + VACUUM ANALYZE: {copy_seconds:.1f} s")
    print(f"load-data: {load_seconds:.1f} s ({load_seconds / copy_seconds:.2f}x COPY), "
          f"peak RSS {load_rss:.0f} MB, client CPU {load_cpu:.1f} s")  # fmt: skip
    after = table_state(load_url)
    print("| table | live rows | dead rows | dead/live | statistics |")
    for table in TABLES:
        state = after[table]
        share = state["dead"] / max(state["live"], 1)
        print(f"| {table} | {state['live']:,} | {state['dead']:,} | {share:.1%} | "
              f"{'yes' if state['analyzed'] else 'no'} |")  # fmt: skip
    delta_document = delta(load_url, arguments.directory)
    delta_seconds, _rss, delta_cpu = timed_load(load_url, delta_document)
    touched = len(json.loads(delta_document.read_text())["bookings"])
    rewritten = table_state(load_url)["encounters"]["updates"] - after["encounters"]["updates"]
    print(f"delta of {touched:,} bookings: {delta_seconds:.2f} s (client CPU {delta_cpu:.2f} s), "
          f"{rewritten:,} encounter rows "
          f"rewritten ({rewritten / max(touched, 1):.2f} per touched encounter)")  # fmt: skip
    if arguments.twice:
        twice = world(arguments.directory, 2 * arguments.scale)
        twice_url = fresh(server, f"{prefix}_twice")
        twice_seconds, twice_rss, _cpu = timed_load(twice_url, twice)
        print(f"twice as large ({twice.stat().st_size / 1e6:.0f} MB): {twice_seconds:.1f} s, "
              f"peak RSS {twice_rss:.0f} MB ({twice_rss / load_rss:.2f}x)")  # fmt: skip
    if not arguments.keep:
        for name in ("copy", "load", "twice"):
            drop_database(server, f"{prefix}_{name}")


if __name__ == "__main__":
    main()
