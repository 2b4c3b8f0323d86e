"""The side-by-side benchmark: this service against its peer (FastAPI + asyncpg), in one run.

    make bench                                   # the standard world, 20- and 256-item answers
    python -m bench.versus --repeat 3 --seconds 15

Both serve the same world (bench/world.py: loaded with `init-db` and `load-data`, never vacuumed
here) from the same PostgreSQL, with 2 workers each (gunicorn sync workers; uvicorn workers with
uvloop and httptools), and are driven by the same wrk with the same lines (real users, tokens
minted here, windows fitted to 20 and to 256 items). Before anything is timed every line is sent
to both and their answers compared: status, body, ETag, Content-Type, Cache-Control, Vary. Then
the runs alternate (service, peer, peer, service, ...) so that both meet the machine's noise
alike. The end is a table per answer size and the issue's goals, MET or MISSED.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.datasets import DEFAULT_SERVER, Dataset
from bench.load import Line, Run, Server, drive, wrk_binary
from bench.machine import machine, revision
from bench.mixes import Scenario, user_mix
from bench.peer.server import Uvicorn
from bench.world_database import prepare_world
from tests.live import free_port, running_gunicorn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SIZES = (20, 256)
HEADERS = ("ETag", "Content-Type", "Cache-Control", "Vary")
# Lines also compared as text/json and as a conditional request (304).
VARIANT_LINES = 10
# The goals (issue 17), judged on the mean of the repeated runs.
MIN_SPEEDUP = {256: 1.3, 20: 1.0}
MAX_CPU_SHARE = 0.8


def answer(
    server: Server, line: Line, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """One request: status, body, and the headers that must match."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    sent = {"Authorization": f"Bearer {line.token}", **(headers or {})}
    connection.request("GET", line.path, headers=sent)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body, {name: response.getheader(name, "") for name in HEADERS}


def compare(service: Server, peer: Server, lines: list[Line]) -> list[str]:
    """Every line sent to both (the first ones also as text/json, and again with their ETag):
    the differences (none, or the bench stops before timing)."""
    differences = []
    for n, line in enumerate(lines):
        variants: list[dict[str, str]] = [{}]
        if n < VARIANT_LINES:
            etag = answer(service, line)[2]["ETag"]
            variants += [{"Accept": "text/json"}, {"If-None-Match": etag}]
        for headers in variants:
            ours, theirs = answer(service, line, headers), answer(peer, line, headers)
            if ours[0] not in (200, 304):
                differences.append(f"GET {line.path} {headers}: the service answered {ours[0]}")
            elif ours != theirs:
                differences.append(
                    f"GET {line.path} {headers}: {ours[0]} {ours[2]} vs {theirs[0]} {theirs[2]}"
                )
    return differences


def parse_arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measured wrk run")
    parser.add_argument("--warmup", type=float, default=3, help="per wrk run, not measured")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each stack per size")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=100, help="random users of each role")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="load the world anew")
    parser.add_argument(
        "--service-workers",
        type=int,
        default=2,
        help="gunicorn sync workers (the issue's setup: 2, as the peer's uvicorn workers)",
    )
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_SERVER_URL") or DEFAULT_SERVER
    )
    parser.add_argument("--database", default="bench_world", help="the world's database")
    parser.add_argument("--output", type=Path, default=RESULTS / "versus.json")
    return parser.parse_args()


def main() -> int:
    """Load (or reuse) the world, check both stacks' answers, time them, print the verdict."""
    arguments = parse_arguments()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wrk_binary()
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    info: dict[str, Any] = {"revision": revision(), "machine": machine()}
    info["command"] = " ".join(["python -m bench.versus", *sys.argv[1:]])
    print(f"side by side at {info['revision']} on {json.dumps(info['machine'])}", flush=True)
    world = prepare_world(arguments.server_url, arguments.database, rebuild=arguments.rebuild)
    secret = secrets.token_urlsafe(48)
    settings = {"DATABASE_URL": world.url, "JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256"}
    runs: dict[int, dict[str, list[Run]]] = {size: {"service": [], "peer": []} for size in SIZES}
    with running_gunicorn(
        world.url,
        secret,
        RESULTS / "versus-service.log",
        port=free_port(),
        workers=arguments.service_workers,
        environment={"WEB_CONCURRENCY": str(arguments.service_workers), "LOG_LEVEL": "info"},
    ) as service:
        peer = Uvicorn(settings, RESULTS / "versus-peer.log").start()
        try:
            mixes = measure(arguments, world, secret, service, peer, runs)
        finally:
            peer.stop()
    document = report(runs, mixes, arguments)
    info.update(document, elapsed_seconds=round(time.time() - started))
    info["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    arguments.output.write_text(json.dumps(info, indent=2, default=str))
    print(f"\nresults: {arguments.output}; load average at the end {os.getloadavg()}")
    return 0


def measure(
    arguments: argparse.Namespace,
    world: Dataset,
    secret: str,
    service: Server,
    peer: Server,
    runs: dict[int, dict[str, list[Run]]],
) -> dict[int, Scenario]:
    """The mixes, checked on both, then the alternating wrk runs."""
    mixes = {}
    for size in SIZES:
        mix, _, _ = user_mix(service, world, secret, arguments.users, arguments.seed, size)
        differences = compare(service, peer, mix.lines)
        mix.items = [len(json.loads(answer(service, line)[1])) for line in mix.lines]
        print(
            f"[{size}] {len(mix.lines)} lines, {mix.item_summary()}; same bytes on both: "
            f"{'yes' if not differences else 'NO'}",
            flush=True,
        )
        if differences:
            print("\n".join(differences[:10]))
            raise SystemExit(f"the two stacks answer differently ({len(differences)} lines)")
        mixes[size] = mix
    servers = {"service": service, "peer": peer}
    for size, mix in mixes.items():
        for repeat in range(arguments.repeat):
            order = ("service", "peer") if repeat % 2 == 0 else ("peer", "service")
            for name in order:
                common: dict[str, Any] = {
                    "database_url": world.url,
                    "connections": arguments.connections,
                    "has_metrics": name == "service",
                }
                drive(servers[name], mix.lines, "warm-up", seconds=arguments.warmup, **common)
                run = drive(
                    servers[name], mix.lines, f"{name} {size}", seconds=arguments.seconds, **common
                )
                runs[size][name].append(run)
                print(f"[{size}] {run.row()}", flush=True)
    return mixes


def _mean(runs: list[Run], field: str) -> float:
    values = [r.requests_per_second if field == "rps" else getattr(r, field) for r in runs]
    return statistics.mean(values)


def report(
    runs: dict[int, dict[str, list[Run]]], mixes: dict[int, Scenario], arguments: argparse.Namespace
) -> dict[str, Any]:
    """The side-by-side table and the goals (means of the repeated runs); what is written out."""
    print(
        f"\n{arguments.connections} connections, {arguments.seconds:g} s per run, "
        f"{arguments.repeat} runs of each (mean; every run above)\n"
    )
    print(
        "| answer | stack | req/s | p50 ms | p99 ms | server CPU ms/req | PostgreSQL CPU "
        "ms/req | both |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    goals = []
    for size in SIZES:
        figures = {}
        for name in ("service", "peer"):
            each = runs[size][name]
            f = {
                k: _mean(each, k)
                for k in (
                    "rps",
                    "p50_ms",
                    "p99_ms",
                    "app_cpu_ms_per_request",
                    "db_cpu_ms_per_request",
                )
            }
            f["cpu"] = f["app_cpu_ms_per_request"] + f["db_cpu_ms_per_request"]
            figures[name] = f
            items = statistics.median(mixes[size].items)
            print(
                f"| {size} items (median {items:g}) | {name} | {f['rps']:.0f} | "
                f"{f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['app_cpu_ms_per_request']:.2f} | "
                f"{f['db_cpu_ms_per_request']:.2f} | {f['cpu']:.2f} |"
            )
        ours, theirs = figures["service"], figures["peer"]
        speedup = ours["rps"] / theirs["rps"]
        # Each repeat's own pair too: how far the machine's noise moves the ratio of the means.
        paired = [
            mine.requests_per_second / peer.requests_per_second
            for mine, peer in zip(runs[size]["service"], runs[size]["peer"], strict=True)
        ]
        goals.append(
            (
                f"{size} items: req/s >= {MIN_SPEEDUP[size]}x the peer's",
                speedup >= MIN_SPEEDUP[size],
                f"{speedup:.2f}x (each pair of runs: {', '.join(f'{r:.2f}' for r in paired)})",
            )
        )
        if size == max(SIZES):
            share = ours["cpu"] / theirs["cpu"]
            goals.append(
                (
                    f"{size} items: server + PostgreSQL CPU <= {MAX_CPU_SHARE}x the peer's",
                    share <= MAX_CPU_SHARE,
                    f"{share:.2f}x",
                )
            )
            goals.append(
                (
                    f"{size} items: p99 no worse than the peer's",
                    ours["p99_ms"] <= theirs["p99_ms"],
                    f"{ours['p99_ms']:.1f} vs {theirs['p99_ms']:.1f} ms",
                )
            )
    print("\n| goal | verdict | figure |\n|---|---|---|")
    for goal, met, figure in goals:
        print(f"| {goal} | {'MET' if met else '**MISSED**'} | {figure} |")
    non_2xx = sum(r.non_2xx + r.errors for s in runs.values() for rs in s.values() for r in rs)
    print(f"\nnon-2xx answers and socket errors in all runs: {non_2xx}")
    return {
        "runs": {
            size: {n: [asdict(r) for r in rs] for n, rs in s.items()} for size, s in runs.items()
        },
        "goals": [{"goal": g, "met": m, "figure": f} for g, m, f in goals],
        "non_2xx": non_2xx,
    }


if __name__ == "__main__":
    sys.exit(main())
