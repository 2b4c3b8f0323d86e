"""Time (and optionally profile) the endpoint in-process, through the test client.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_1m \\
    JWT_SECRET=dev-only-secret-do-not-deploy-0123456789 \\
        .venv/bin/python -m bench.profile_requests --requests 2000 [--profile cprofile|pyinstrument]

A measuring tool for a database `flask demo-data` built (ST-000001, a staff member of
ST-000001's center: about 20 items, and about 500). It prints microseconds per request per case.

`python -m bench.perf` profiles its own mixes the same way (`profile`) when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bench.datasets import Dataset
from bench.load import Line
from bench.mixes import BIG_ITEMS, scenarios
from service.app import create_app
from service.db import db
from service.models import StaffAssignment, User
from service.tokens import mint_token
from tests.live import free_port, running_gunicorn


def main() -> None:
    """Run the loops and print µs per request."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", choices=["cprofile", "pyinstrument"])
    parser.add_argument("--case", default="student,staff,staff-500")
    arguments = parser.parse_args()

    app = create_app()
    settings = app.extensions["encounters.settings"]
    with app.app_context():
        center_id = db.connection.execute(
            select(User.center_id).where(User.reference_id == "ST-000001")
        ).scalar_one()
        staff = db.connection.execute(
            select(User.reference_id)
            .join(StaffAssignment, StaffAssignment.user_id == User.id)
            .where(StaffAssignment.center_id == center_id)
            .order_by(User.reference_id)
        ).scalar()
    today = datetime.now(UTC).date()

    def window(days: int) -> str:
        return f"from={today}&to={today + timedelta(days=days)}"

    # Demo data: about 20 items for the first two cases, about 500 for the third.
    cases = {
        "student": (
            f"/users/me/encounters?online=false&{window(5)}",
            mint_token(settings, "ST-000001", "Student"),
        ),
        "staff": (
            f"/users/ST-000001/encounters?online=false&{window(5)}",
            mint_token(settings, str(staff), "StaffMember"),
        ),
        "staff-500": (
            f"/users/me/encounters?{window(6)}",
            mint_token(settings, "SM-0001", "StaffMember"),
        ),
    }
    client = app.test_client()
    for name in arguments.case.split(","):
        path, token = cases[name]
        headers = {"Authorization": f"Bearer {token}"}
        first = client.get(path, headers=headers)
        assert first.status_code == 200, first.get_data(as_text=True)
        for _ in range(50):
            client.get(path, headers=headers)
        profiler = _profiler(arguments.profile)
        durations = []
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(arguments.requests):
            before = time.perf_counter()
            client.get(path, headers=headers)
            durations.append(time.perf_counter() - before)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        print(
            f"{name}: {len(first.get_json())} items, "
            f"{elapsed / arguments.requests * 1e6:.0f} µs/request wall "
            f"(p50 {statistics.median(durations) * 1e6:.0f}), "
            f"{cpu / arguments.requests * 1e6:.0f} µs/request CPU of this process, "
            f"over {arguments.requests}"
        )
        if profiler is not None:
            profiler(name)


def _profiler(kind: str | None) -> Callable[[str], None] | None:
    if kind == "cprofile":
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()

        def report(name: str) -> None:
            profile.disable()
            path = f"/tmp/profile-{name}.pstats"
            profile.dump_stats(path)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)

        return report
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        profiler.start()

        def report_pyinstrument(name: str) -> None:
            profiler.stop()
            path = f"/tmp/profile-{name}.txt"
            with open(path, "w") as out:
                out.write(profiler.output_text(unicode=True, show_all=False))
            print(f"  pyinstrument report: {path}")

        return report_pyinstrument
    return None


def profile(dataset: Dataset, lines: list[Line], secret: str, title: str, requests: int) -> str:
    """Where the time of `requests` in-process requests goes (pyinstrument), for a missed target."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "(pyinstrument is not installed: pip install -e '.[bench]')"
    app = create_app({"DATABASE_URL": dataset.url, "JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256"})
    client = app.test_client()
    for line in lines[:5]:  # warm: connections, caches
        client.get(line.path, headers={"Authorization": f"Bearer {line.token}"})
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for n in range(requests):
        line = lines[n % len(lines)]
        client.get(line.path, headers={"Authorization": f"Bearer {line.token}"})
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    return f"profile: {title}, {requests} requests in-process (no gunicorn, no wrk)\n{text}"


def tokens_for_profile(
    dataset: Dataset, secret: str, users: int, seed: int
) -> tuple[list[Line], list[Line]]:
    """The two mixes again, with tokens of `secret`, fitted against a short-lived server."""
    with running_gunicorn(
        dataset.url, secret, Path(os.devnull), workers=1, port=free_port()
    ) as server:
        small, lists = scenarios(server, dataset, secret, users, seed)
    return small.lines, lists[BIG_ITEMS].lines


if __name__ == "__main__":
    main()
