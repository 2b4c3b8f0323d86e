"""(d) kill -9 behind HAProxy: an instance killed under load costs (almost) no request."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from bench.load import Line
from bench.scale.balancer import HAProxy
from bench.scale.fleet import INSTANCES, TOTAL_WORKERS, Fleet
from bench.scale.processes import with_children
from bench.scale.traffic import wrk
from bench.scale.verdict import Check


def check_kill(haproxy: HAProxy, fleet: Fleet, mix: list[Line]) -> Check:
    """(d) kill -9 of app2 (master and workers) under load: failures and time to DOWN."""
    fleet.start({0: TOTAL_WORKERS // INSTANCES})
    haproxy.set_state("app1", "ready")
    haproxy.wait_status("app1", "UP")
    victim = fleet.running[1][1]
    with wrk(haproxy.port, mix, seconds=10, connections=8) as run:
        time.sleep(3)
        for pid in with_children(victim.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        down = haproxy.wait_status("app2", "DOWN", timeout=15)
    fleet.stop(1)
    rate = run["failed"] / max(run["requests"], 1)
    passed = rate <= 0.005 and down <= 10
    summary = (
        f"{run['requests']} requests in 10 s, {run['failed']} failed ({rate:.2%}); HAProxy "
        f"marked app2 DOWN {down:.2f} s after the kill"
    )
    short = f"kill -9 {run['failed']}/{run['requests']} failed, DOWN in {down:.1f} s"
    figures = {"requests": run["requests"], "failed": run["failed"], "down_seconds": round(down, 2)}
    return Check("d", passed, summary, figures, short)
