"""The standard world of the side-by-side benchmark, as a user would load it: `load-data` of a file.

200 centers, 100,000 students, 2,000 staff members, about 135,000 encounters and 394,000
bookings over 56 days (a 100 MB import document, issue 16's shape). The document is generated
(one `random.Random(seed)`, so a seed names one world), written to a file, and loaded with the
product's own commands: `flask --app wsgi init-db`, then `flask --app wsgi load-data FILE`. The
benchmark then measures the database as those commands leave it: no VACUUM or ANALYZE of its own.
A table `bench_world` records the shape loaded and the revision of the loading code (service/admin,
migrations), so a rerun reuses the database until either changes (`--rebuild` loads anew).
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
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

WORLD = Size("world", centers=200, students=100_000, staff=2_000, days=56, seed=7)
UNITS = 12
ONLINE_SHARE = 0.10
NO_UNIT_SHARE = 0.03
CANCELLED_SHARE = 0.03
# Classes a day per center: about 15 on a weekday (8:00 to 20:00), 6 on Saturday, none on Sunday.
WEEKDAY_CLASSES, SATURDAY_CLASSES = (11, 20), (4, 8)
CAPACITY = (4, 8)
DURATIONS = (45, 60, 60, 90)
BOOKINGS_PER_ENCOUNTER = 3.4
CANCELLED_BOOKING_SHARE = 0.08
START = date(2030, 1, 7)  # a Monday: the world's first day


def document(size: Size = WORLD) -> dict[str, list[dict[str, Any]]]:
    """The import document of `size` (docs/data.md's format)."""
    rng = random.Random(size.seed)

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    centers = [
        {"Id": new_id(), "ReferenceId": f"C-{n:03d}", "Name": f"Center {n:03d} \u2013 Downtown"}
        for n in range(1, size.centers + 1)
    ]
    users: list[dict[str, Any]] = []
    by_place: dict[tuple[str, int], list[str]] = {}
    for n in range(1, size.students + 1):
        home = rng.choice(centers)["Id"]
        unit = None if rng.random() < NO_UNIT_SHARE else rng.randint(1, UNITS)
        user_id = new_id()
        users.append(
            {
                "Id": user_id,
                "ReferenceId": f"ST-{n:06d}",
                "Email": f"student.{n}@example.com",
                "Role": "Student",
                "CenterId": home,
                "CurrentUnit": unit,
            }
        )
        if unit is not None:
            by_place.setdefault((home, unit), []).append(user_id)
    for n in range(1, size.staff + 1):
        users.append(
            {
                "Id": new_id(),
                "ReferenceId": f"SM-{n:04d}",
                "Email": f"staff.{n}@example.com",
                "Role": "StaffMember",
                "CenterIds": [c["Id"] for c in rng.sample(centers, rng.randint(1, 3))],
            }
        )
    encounters: list[dict[str, Any]] = []
    bookings: list[dict[str, Any]] = []
    for day in range(size.days):
        when = datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC)
        classes = {5: SATURDAY_CLASSES, 6: (0, 0)}.get(when.weekday(), WEEKDAY_CLASSES)
        for center in centers:
            for _ in range(rng.randint(*classes)):
                starts = when + timedelta(hours=rng.randint(8, 19), minutes=rng.choice((0, 30)))
                unit = rng.randint(1, UNITS)
                capacity = rng.randint(*CAPACITY)
                encounter = {
                    "Id": new_id(),
                    "CenterId": center["Id"],
                    "UnitNumber": unit,
                    "DateTime": starts.isoformat(),
                    "EndDate": (starts + timedelta(minutes=rng.choice(DURATIONS))).isoformat(),
                    "IsOnline": rng.random() < ONLINE_SHARE,
                    "Capacity": capacity,
                    "Cancelled": rng.random() < CANCELLED_SHARE,
                }
                encounters.append(encounter)
                pool = by_place.get((center["Id"], unit), [])
                wanted = min(len(pool), int(rng.expovariate(1 / BOOKINGS_PER_ENCOUNTER)))
                bookings += [
                    {
                        "EncounterId": encounter["Id"],
                        "UserId": student,
                        "Cancelled": rng.random() < CANCELLED_BOOKING_SHARE,
                    }
                    for student in rng.sample(pool, wanted)
                ]
    return {"centers": centers, "users": users, "encounters": encounters, "bookings": bookings}


def loader_revision() -> str:
    """The last commit of the code that loads a world (a new one means a new load)."""
    done = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--", "service/admin", "migrations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


def prepare_world(server_url: str, name: str, *, rebuild: bool, size: Size = WORLD) -> Dataset:
    """Database `name` holding the world, as `init-db` and `load-data` leave it (built once)."""
    url = database_url(server_url, name)
    recipe = {**asdict(size), "loader": loader_revision()}
    ensure_database(server_url, name)
    with psycopg.connect(libpq_url(url), autocommit=True) as pg:
        pg.execute("CREATE TABLE IF NOT EXISTS bench_world (shape jsonb)")
        recorded = pg.execute("SELECT shape FROM bench_world").fetchone()
    built = None
    if rebuild or recorded is None or recorded[0] != recipe:
        # A new database: the world is loaded into empty tables, as a user's first import is.
        drop_database(server_url, name)
        ensure_database(server_url, name)
        began = time.perf_counter()
        flask(url, "init-db")
        with tempfile.TemporaryDirectory(prefix="encounters-world-") as folder:
            path = Path(folder, "world.json")
            path.write_bytes(orjson.dumps(document(size)))
            print(f"[world] load-data of a {path.stat().st_size / 1e6:.0f} MB document", flush=True)
            print(f"[world] {flask(url, 'load-data', str(path))}", flush=True)
        built = time.perf_counter() - began
        with psycopg.connect(libpq_url(url), autocommit=True) as pg:
            pg.execute("CREATE TABLE bench_world (shape jsonb)")
            pg.execute("INSERT INTO bench_world VALUES (%s)", (json.dumps(recipe),))
    flask(url, "init-db")  # a new migration is applied before measuring
    with psycopg.connect(libpq_url(url), autocommit=True) as pg:
        counts = pg.execute(
            "SELECT (SELECT count(*) FROM encounters), (SELECT count(*) FROM bookings),"
            " (SELECT count(*) FROM users)"
        ).fetchone()
    assert counts is not None
    encounters, bookings, users = counts
    print(f"[world] {encounters:,} encounters, {bookings:,} bookings, {users:,} users", flush=True)
    return Dataset(size, url, START, encounters, bookings, users, built_seconds=built)
