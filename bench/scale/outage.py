"""Steady traffic through a fault, every answer kept, and what the answers say about the fault.

SPEC 10: while the topology fails, the service answers only 200 or 503 with Retry-After, and 200
again within seconds. Threads send requests one after another (a new connection each, as many
clients would) and record each answer's time, status and Retry-After.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.load import Line


@dataclass(frozen=True)
class Reply:
    """One answer: when it came (monotonic), its status (0: no HTTP answer), its Retry-After,
    and how long it took."""

    at: float
    status: int
    retry_after: bool
    seconds: float


@dataclass
class Traffic:
    """The answers so far, and the moments of the fault's events."""

    replies: list[Reply] = field(default_factory=list)
    events: dict[str, float] = field(default_factory=dict)

    def mark(self, event: str) -> None:
        """Note when `event` happened."""
        self.events[event] = time.monotonic()

    def verdict(self, since: str, settle: float) -> dict[str, Any]:
        """Figures of the answers, and whether they hold: only 200 or 503 with Retry-After,
        and only 200 from `settle` seconds after the event `since` on."""
        began = self.events[since]
        wrong = [r for r in self.replies if not _acceptable(r)]
        failed = [r for r in self.replies if r.status != 200]
        late = [r for r in failed if r.at >= began + settle]
        last_failure = max((r.at for r in failed), default=None)
        figures = {
            "requests": len(self.replies),
            "503": sum(r.status == 503 for r in self.replies),
            "other_failures": len(wrong),
            "failures_after_settle": len(late),
            "slowest_seconds": round(max((r.seconds for r in self.replies), default=0.0), 2),
            # From the event to the first 200 after it, and to the first 200 after which every
            # answer was 200 (0: none failed after the event).
            "first_200_after_seconds": round(
                min((r.at for r in self.replies if r.status == 200 and r.at > began), default=-1)
                - began,
                3,
            ),
            "all_200_after_seconds": (
                0.0 if last_failure is None else round(max(0.0, last_failure - began), 2)
            ),
        }
        figures["passed"] = not wrong and not late and bool(self.replies)
        return figures


def _acceptable(reply: Reply) -> bool:
    return reply.status == 200 or (reply.status == 503 and reply.retry_after)


def _ask(port: int, line: Line) -> Reply:
    began = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", line.path, headers={"Authorization": f"Bearer {line.token}"})
        response = connection.getresponse()
        response.read()
        retry_after = (response.getheader("Retry-After") or "").strip().isdigit()
        now = time.monotonic()
        return Reply(now, response.status, retry_after, now - began)
    except (OSError, http.client.HTTPException):
        now = time.monotonic()
        return Reply(now, 0, False, now - began)
    finally:
        connection.close()


@contextlib.contextmanager
def steady(
    port: int, lines: list[Line], clients: int = 4, pause: float = 0.02
) -> Iterator[Traffic]:
    """`clients` threads asking 127.0.0.1:`port` in turn while the block runs."""
    traffic = Traffic()
    stop = threading.Event()

    def client(offset: int) -> None:
        number = offset
        while not stop.is_set():
            traffic.replies.append(_ask(port, lines[number % len(lines)]))
            number += clients
            time.sleep(pause)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield traffic
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=40)
    traffic.replies.sort(key=lambda reply: reply.at)
