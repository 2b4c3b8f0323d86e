"""The soak's traffic: N keep-alive connections sending the mix, each answer checked as it comes."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.soak.probes import Probe
from tests.live import Gunicorn


@dataclass
class Tally:
    """What the connections saw; threads add under the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    errors: int = 0


def drive(server: Gunicorn, mix: list[Probe], seconds: float, connections: int, seed: int) -> Tally:
    """Send the mix from `connections` threads for `seconds`; check every answer."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    # Each kind gets an equal share of the requests, however many probes it has.
    kinds: dict[str, list[Probe]] = {}
    for probe in mix:
        kinds.setdefault(probe.kind, []).append(probe)
    groups = list(kinds.values())

    def connection_loop(number: int) -> None:
        chooser = random.Random(seed * 1000 + number)
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        while time.monotonic() < deadline:
            probe = chooser.choice(chooser.choice(groups))
            started = time.perf_counter()
            try:
                connection.request(probe.method, probe.path, headers=probe.headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                with tally.lock:
                    tally.errors += 1
                    tally.failures.append(f"{probe.name}: {type(error).__name__}")
                continue
            elapsed = time.perf_counter() - started
            wrong = (
                f"status {response.status}"
                if response.status != probe.status
                else probe.check(response, body)
            )
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
            with tally.lock:
                tally.sent[probe.kind] += 1
                tally.statuses[response.status] += 1
                tally.latencies.append(elapsed)
                if wrong and len(tally.failures) < 50:
                    tally.failures.append(f"{probe.name}: {wrong}")
                elif wrong:
                    tally.errors += 1
        connection.close()

    threads = [threading.Thread(target=connection_loop, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally
