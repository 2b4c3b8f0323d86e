"""One size measured: the service and the fixed-body ceiling under gunicorn, driven by wrk.

The mixes are checked first (every request once: each must be a 200), their plans EXPLAINed, then
each run is a warm-up and a measured wrk run; the figures of every run make one SizeResult.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.datasets import Dataset
from bench.explain import RequestPlans, explain_requests
from bench.explain import report as plan_report
from bench.load import Line, Run, drive
from bench.mixes import BIG_ITEMS, SAME_BYTES_ITEMS, Scenario, fetch, list_label, scenarios
from tests.live import Gunicorn, free_port, running_gunicorn

# The setup: 2 sync workers (gunicorn.conf.py's own default here would be 2 x 2 + 1).
WORKERS = 2


@dataclass
class SizeResult:
    """Everything measured on one dataset."""

    name: str
    encounters: int
    bookings: int
    users: int
    built_seconds: float | None
    mean_items: float
    mean_big_items: float
    runs: dict[str, dict[str, Any]]
    # Items per answer of each staff-list run (label -> mean), for the per-item fit.
    list_items: dict[str, float]
    seq_scans: list[str]
    repeated_probes: list[str]
    plan_ms: dict[str, list[float | None]]
    verify_failures: list[str]


def fixed_body_line(line: Line, items: int) -> Line:
    """`line` for the fixed-body app, asking it for a body of `items` items (its `?items=`)."""
    return Line(f"{line.path}&items={items}", line.token)


def verify(server: Gunicorn, scenario: Scenario) -> list[str]:
    """Send every request of the scenario once: each must be a 200; record the list lengths."""
    failures = []
    scenario.items = []
    for line in scenario.lines:
        status, found = fetch(server, line)
        if status != 200:
            failures.append(f"{scenario.name}: GET {line.path} -> {status}")
        scenario.items.append(len(found))
    return failures


@dataclass
class Options:
    """The command line, as the measuring code needs it."""

    seconds: float
    warmup: float
    connections: int
    users: int
    seed: int
    explain: bool
    log_dir: Path
    workers: int = WORKERS


def measure(
    dataset: Dataset, options: Options, fit: bool = False
) -> tuple[SizeResult, list[RequestPlans]]:
    """Every run on one dataset: the endpoint (20 and 500 items; with `fit`, the staff lists of
    FIT_ITEMS too), then the fixed body (20 items; with `fit`, 250 too)."""
    name = dataset.size.name
    secret = secrets.token_urlsafe(48)
    runs: dict[str, Run] = {}

    def run(server: Gunicorn, lines: list[Line], label: str, connections: int) -> None:
        common: dict[str, Any] = {"database_url": dataset.url, "connections": connections}
        drive(server, lines, "warm-up", seconds=options.warmup, **common)
        runs[label] = drive(server, lines, label, seconds=options.seconds, **common)
        print(f"[{name}] {runs[label].row()}", flush=True)

    # The access log (one JSON line per request, as in production) goes to a file, not a terminal.
    log = options.log_dir / f"gunicorn-{name}.log"
    environment = {"WEB_CONCURRENCY": str(options.workers), "LOG_LEVEL": "info"}
    with running_gunicorn(
        dataset.url, secret, log, workers=options.workers, port=free_port(), environment=environment
    ) as server:
        small, lists = scenarios(server, dataset, secret, options.users, options.seed, fit)
        big = lists[BIG_ITEMS]
        failures = verify(server, small)
        print(f"[{name}] 20-item mix: {len(small.lines)} users, {small.item_summary()}")
        for items, scenario in lists.items():
            failures += verify(server, scenario)
            print(
                f"[{name}] {items}-item lists: {len(scenario.lines)} staff members, "
                f"{scenario.item_summary()}"
            )
        plans: list[RequestPlans] = []
        if options.explain:
            student = next(line for line in small.lines if "/users/me/" in line.path)
            staff = next(line for line in small.lines if "/users/me/" not in line.path)
            plans = explain_requests(
                dataset.url,
                secret,
                {
                    f"{name} student (own list)": student,
                    f"{name} staff member -> a student": staff,
                    f"{name} staff member, 500 items": big.lines[0],
                },
            )
            print("\n".join(f"[{name}] {text}" for text in plan_report(plans)))
        run(server, small.lines, "endpoint 20 items", options.connections)
        run(server, small.lines, "endpoint 20 items c1", 1)
        for items, scenario in lists.items():
            run(server, scenario.lines, list_label(items), 1)
    with running_gunicorn(
        dataset.url,
        secret,
        options.log_dir / f"gunicorn-fixed-{name}.log",
        workers=options.workers,
        port=free_port(),
        environment=environment,
        app="bench.fixed_app:app",
    ) as fixed:
        run(fixed, small.lines, "fixed body", options.connections)
        run(fixed, small.lines, "fixed body c1", 1)
        if fit:
            # The same requests, answered with a fixed body of as many items (and bytes).
            long = [
                fixed_body_line(line, SAME_BYTES_ITEMS) for line in lists[SAME_BYTES_ITEMS].lines
            ]
            run(fixed, long, f"fixed body {SAME_BYTES_ITEMS} items c1", 1)
    result = SizeResult(
        name=name,
        encounters=dataset.encounters,
        bookings=dataset.bookings,
        users=dataset.users,
        built_seconds=dataset.built_seconds,
        mean_items=sum(small.items) / max(len(small.items), 1),
        mean_big_items=sum(big.items) / max(len(big.items), 1),
        list_items={
            list_label(items): sum(scenario.items) / max(len(scenario.items), 1)
            for items, scenario in lists.items()
        },
        runs={
            label: {**asdict(r), "requests_per_second": r.requests_per_second}
            for label, r in runs.items()
        },
        seq_scans=sorted({t for p in plans for plan in p.plans for t in plan.seq_scans}),
        repeated_probes=sorted(
            {t for p in plans for plan in p.plans for t in plan.repeated_probes}
        ),
        plan_ms={p.label: [plan.execution_ms for plan in p.plans] for p in plans},
        verify_failures=failures,
    )
    return result, plans
