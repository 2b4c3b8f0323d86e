"""The performance benchmark of GET /users/{userIdentifier}/encounters (docs/performance.md).

    make bench                 # 10k, 100k and 1M encounters; about 6 minutes (+1 min per new 1M)
    make bench-ci              # one small dataset, 2 s runs: checks SQL count and non-2xx only
    python -m bench.perf --sizes 10k,1m --seconds 15 --rebuild

For each size: a PostgreSQL database holding `flask demo-data` of that size (bench/datasets.py),
the service under gunicorn with the repo's gunicorn.conf.py, and wrk in a second process sending
requests of random real users of both roles (students: /users/me; staff members: a student of
one of their centers) with tokens minted here. The same wrk runs hit a fixed-body app on the same
stack (bench/fixed_app.py): the ceiling. The plans of the SQL one request runs are EXPLAINed. The
end is a table of the issue's targets, each MET or MISSED (by how much); a miss adds a profile.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.datasets import (
    DEFAULT_SERVER,
    SIZES,
    Dataset,
    database_url,
    drop_database,
    ensure_database,
    prepare,
)
from bench.load import wrk_binary
from bench.machine import machine, revision
from bench.measure import WORKERS, Options, SizeResult, measure
from bench.profile_requests import profile, tokens_for_profile
from bench.report import print_summary, results_document, write_results
from bench.targets import DB_CPU_250_BEFORE_MS, PROFILED, STRUCTURAL, judge

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def parse_arguments() -> tuple[argparse.Namespace, list[str]]:
    """The command line (with `--ci`'s settings applied) and the sizes to run, smallest first."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m", help=f"of {', '.join(SIZES)}")
    parser.add_argument("--seconds", type=float, default=10, help="per measured wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="per wrk run, not measured")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=WORKERS, help="gunicorn sync workers, both apps"
    )
    parser.add_argument("--users", type=int, default=100, help="random users of each role")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the size databases")
    parser.add_argument("--no-explain", dest="explain", action="store_false")
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="not even for a missed target"
    )
    parser.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_SERVER_URL") or DEFAULT_SERVER,
        help="PostgreSQL server; database PREFIX<size> per size, created when missing",
    )
    parser.add_argument("--prefix", default="bench_")
    parser.add_argument(
        "--db-cpu-250-before",
        type=float,
        default=DB_CPU_250_BEFORE_MS,
        help="ms: ce545c3's PostgreSQL CPU of a 250-item answer on this machine (the target is "
        "half of it)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or None,
        help="use (and EMPTY) this one database instead, for a single size",
    )
    parser.add_argument(
        "--ci",
        action="store_true",
        help="small and fast: size 5k, 2 s runs, timings not judged; a temporary database "
        "unless --database-url",
    )
    parser.add_argument(
        "--output", type=Path, help="default: bench/results/latest.json (ci.json with --ci)"
    )
    arguments = parser.parse_args()
    arguments.output = arguments.output or RESULTS / ("ci.json" if arguments.ci else "latest.json")
    if arguments.ci:
        arguments.sizes, arguments.seconds, arguments.warmup = "5k", 2, 1
        arguments.users = min(arguments.users, 20)
    names = [n.strip().lower() for n in arguments.sizes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SIZES]
    if unknown or not names:
        parser.error(f"unknown size {unknown}; sizes are {', '.join(SIZES)}")
    names.sort(key=lambda n: SIZES[n].centers)
    if arguments.database_url and len(names) > 1:
        parser.error("--database-url holds one size: give one --sizes")
    return arguments, names


def main() -> int:
    """Run the benchmark; exit 1 when a structural target is missed (statements, answers, scans)."""
    arguments, names = parse_arguments()
    # A SIGTERM unwinds like Ctrl-C, so that the servers started here are stopped, not orphaned.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wrk_binary()
    RESULTS.mkdir(parents=True, exist_ok=True)
    options = Options(
        arguments.seconds,
        arguments.warmup,
        arguments.connections,
        arguments.users,
        arguments.seed,
        arguments.explain,
        RESULTS,
        arguments.workers,
    )
    started = time.time()
    command = " ".join(["python -m bench.perf", *sys.argv[1:]])
    info: dict[str, Any] = {"revision": revision(), "machine": machine(), "command": command}
    print(f"benchmark of {info['revision']} on {json.dumps(info['machine'])}", flush=True)

    temporary: str | None = None
    if arguments.ci and not arguments.database_url:
        temporary = f"{arguments.prefix}ci_{os.getpid()}"
        ensure_database(arguments.server_url, temporary)
        arguments.database_url = database_url(arguments.server_url, temporary)
    results: list[SizeResult] = []
    datasets: list[Dataset] = []
    try:
        for name in names:
            url = arguments.database_url
            if url is None:
                ensure_database(arguments.server_url, arguments.prefix + name)
                url = database_url(arguments.server_url, arguments.prefix + name)
            dataset = prepare(SIZES[name], url, rebuild=arguments.rebuild or arguments.ci)
            datasets.append(dataset)
            result, _plans = measure(dataset, options, fit=name == names[-1])
            results.append(result)
        targets = judge(
            results, timings=not arguments.ci, db_cpu_250_before_ms=arguments.db_cpu_250_before
        )
        profiles = []
        if (
            arguments.profile
            and not arguments.ci
            and any(targets[name].met is False for name in PROFILED if name in targets)
        ):
            secret = secrets.token_urlsafe(48)
            small, big = tokens_for_profile(datasets[-1], secret, 20, arguments.seed)
            profiles.append(profile(datasets[-1], small, secret, "20-item mix", 300))
            profiles.append(profile(datasets[-1], big, secret, "500-item staff lists", 30))
    finally:
        if temporary:
            drop_database(arguments.server_url, temporary)

    print_summary(results, targets, profiles, arguments.ci)
    info["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    document = results_document(
        info,
        results,
        targets,
        seconds_per_run=arguments.seconds,
        connections=arguments.connections,
        workers=arguments.workers,
        elapsed_seconds=round(time.time() - started),
    )
    write_results(document, arguments.output)
    end_load = info["machine"]["load_average_at_end"]
    print(
        f"\nresults: {arguments.output} (and its table in .md); load average at the end {end_load}"
    )
    return 1 if any(targets[name].met is False for name in STRUCTURAL) else 0


if __name__ == "__main__":
    sys.exit(main())
