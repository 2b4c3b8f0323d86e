"""(g) PgBouncer restarted under traffic, and (h) PgBouncer paused and resumed under traffic.

Through HAProxy and the fleet, as clients meet them. A restart (SIGTERM, 1 s down, started
again) may cost answers, each a 503 with Retry-After, and all must be 200 again within 5 s of
the restart. A `PAUSE` held 3 s, then `RESUME`, must cost none: requests wait, and go on.
"""

from __future__ import annotations

import time

from bench.load import Line
from bench.scale.balancer import HAProxy
from bench.scale.outage import steady
from bench.scale.pooler import PgBouncer
from bench.scale.verdict import Check

DOWN_SECONDS = 1
BACK_WITHIN_SECONDS = 5
PAUSE_SECONDS = 3


def check_pooler_restart(haproxy: HAProxy, bouncer: PgBouncer, mix: list[Line]) -> Check:
    """(g) PgBouncer stopped, started again 1 s later; 503s with Retry-After, then only 200."""
    with steady(haproxy.port, mix) as traffic:
        time.sleep(2)
        traffic.mark("stopped")
        bouncer.stop()
        time.sleep(DOWN_SECONDS)
        bouncer.start()
        traffic.mark("restarted")
        time.sleep(BACK_WITHIN_SECONDS + 1)
    figures = traffic.verdict("restarted", BACK_WITHIN_SECONDS)
    passed = figures.pop("passed")
    summary = (
        f"{figures['requests']} requests; PgBouncer down {DOWN_SECONDS} s: {figures['503']} "
        f"answers 503, {figures['other_failures']} without Retry-After or not 503; the first 200 "
        f"{figures['first_200_after_seconds']:.3f} s after it was back, only 200 from "
        f"{figures['all_200_after_seconds']:.2f} s"
    )
    short = f"PgBouncer restart {figures['503']}/{figures['requests']} 503, "
    short += f"200 after {figures['all_200_after_seconds']:.1f} s"
    return Check("g", passed, summary, figures, short)


def check_pooler_pause(haproxy: HAProxy, bouncer: PgBouncer, mix: list[Line]) -> Check:
    """(h) `PAUSE`, 3 s, `RESUME`: no answer but 200."""
    with steady(haproxy.port, mix) as traffic:
        time.sleep(1.5)
        traffic.mark("paused")
        bouncer.admin("PAUSE")
        time.sleep(PAUSE_SECONDS)
        bouncer.admin("RESUME")
        time.sleep(1.5)
    figures = traffic.verdict("paused", 0)
    failed = sum(reply.status != 200 for reply in traffic.replies)
    figures.pop("passed")
    summary = (
        f"{figures['requests']} requests; PAUSE held {PAUSE_SECONDS} s: {failed} not 200, "
        f"the slowest answer took {figures['slowest_seconds']:.2f} s"
    )
    short = f"PAUSE {failed}/{figures['requests']} failed"
    return Check("h", failed == 0 and figures["requests"] > 0, summary, figures, short)
