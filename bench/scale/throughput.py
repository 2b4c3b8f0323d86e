"""(e) The scaling mix: throughput and CPU per request of each tier at 1, 2 and 3 instances, and
the capacity model drawn from it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bench.load import Line, cpu_seconds
from bench.scale.balancer import HAProxy
from bench.scale.fleet import INSTANCES, TOTAL_WORKERS, Fleet
from bench.scale.traffic import wrk
from bench.scale.verdict import Check

MEASURE_SECONDS = 6  # per layout
TARGET_UTILISATION = 0.7
REPLICA_CORES = 1.0  # the capacity model's unit: one replica at a 1-CPU limit


def check_throughput(
    haproxy: HAProxy,
    fleet: Fleet,
    mix: list[Line],
    tiers: dict[str, Callable[[], list[int]]],
) -> Check:
    """(e) Throughput and CPU per request of each tier at 1, 2 and 3 instances, same workers."""
    layouts, failed = [], 0
    for instances in (1, 2, 3):
        fleet.stop_all()
        fleet.start({slot: TOTAL_WORKERS // instances for slot in range(instances)})
        for slot in range(INSTANCES):
            haproxy.set_state(f"app{slot + 1}", "ready" if slot < instances else "maint")
        for slot in range(instances):
            haproxy.wait_status(f"app{slot + 1}", "UP")
        with wrk(haproxy.port, mix, seconds=1, connections=12):
            pass  # warm-up: pools connected, caches warm
        pids = {name: find() for name, find in tiers.items()}
        before = {name: cpu_seconds(p) for name, p in pids.items()}
        with wrk(haproxy.port, mix, seconds=MEASURE_SECONDS, connections=12) as run:
            pass
        pids = {name: find() for name, find in tiers.items()}
        cpu = {
            name: (cpu_seconds(p) - before[name]) * 1000 / max(run["requests"], 1)
            for name, p in pids.items()
        }
        failed += run["failed"]
        layouts.append({
            "instances": instances, "workers": TOTAL_WORKERS // instances,
            "rps": round(run["rps"], 1), "p50_ms": run["p50_us"] / 1000,
            "p99_ms": run["p99_us"] / 1000, "failed": run["failed"],
            "cpu_ms_per_request": {name: round(value, 3) for name, value in cpu.items()},
        })  # fmt: skip
    for layout in layouts:
        per_tier = " ".join(f"{k} {v:.2f}" for k, v in layout["cpu_ms_per_request"].items())
        print(
            f"    {layout['instances']} x {layout['workers']} workers: {layout['rps']:7.1f} req/s"
            f"  p50 {layout['p50_ms']:6.1f} ms  p99 {layout['p99_ms']:6.1f} ms  "
            f"CPU ms/req: {per_tier}  failed {layout['failed']}"
        )
    summary = ", ".join(f"{x['instances']} inst {x['rps']:.0f} req/s" for x in layouts)
    short = "/".join(f"{x['rps']:.0f}" for x in layouts) + " req/s at 1/2/3 instances"
    return Check("e", failed == 0, summary + f"; {failed} failed", {"layouts": layouts}, short)


def capacity(layouts: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    """The capacity model from the measured CPU per request (the mean of the three layouts)."""
    tiers = layouts[0]["cpu_ms_per_request"].keys()
    c = {t: sum(x["cpu_ms_per_request"][t] for x in layouts) / len(layouts) for t in tiers}
    answer: dict[str, Any] = {"cpu_ms_per_request": {t: round(v, 3) for t, v in c.items()}}
    for rate in (1_000, 10_000):
        busy = {t: rate * c[t] / 1000 for t in c}  # cores kept busy at `rate`
        answer[str(rate)] = {
            "replicas": math.ceil(busy["gunicorn"] / (REPLICA_CORES * TARGET_UTILISATION)),
            "postgresql_cores": math.ceil(busy["postgresql"] / TARGET_UTILISATION),
            "pgbouncer_processes": math.ceil(busy["pgbouncer"] / TARGET_UTILISATION),
            "haproxy_cores": math.ceil(busy["haproxy"] / TARGET_UTILISATION),
        }
    answer["this_machine_max_rps"] = round(cores * 1000 / sum(c.values()), 0)
    return answer
