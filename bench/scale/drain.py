"""(c) Drain: app1 taken out through HAProxy's runtime API, then stopped, loses no request."""

from __future__ import annotations

import time

from bench.load import Line
from bench.scale.balancer import HAProxy
from bench.scale.fleet import Fleet
from bench.scale.traffic import wrk
from bench.scale.verdict import Check


def check_drain(haproxy: HAProxy, fleet: Fleet, mix: list[Line]) -> Check:
    """(c) app1 drained, then SIGTERM, during a 20 s load: no request may fail."""
    with wrk(haproxy.port, mix, seconds=20, connections=8) as run:
        time.sleep(5)
        served_before = int(haproxy.servers()["app1"]["stot"])
        began = time.monotonic()
        haproxy.set_state("app1", "drain")
        while time.monotonic() - began < 15:
            state = haproxy.servers()["app1"]
            if state["scur"] == "0" and state["qcur"] == "0":
                break
            time.sleep(0.05)
        drained = time.monotonic() - began
        status = fleet.stop(0)
        haproxy.set_state("app1", "maint")
    passed = run["failed"] == 0 and status == 0 and served_before > 0
    summary = (
        f"app1 served {served_before} requests, drained in {drained:.2f} s, stopped with status "
        f"{status}; {run['requests']} requests in 20 s, {run['failed']} failed"
    )
    short = f"drain {run['failed']}/{run['requests']} failed"
    return Check(
        "c", passed, summary, {"requests": run["requests"], "failed": run["failed"]}, short
    )
