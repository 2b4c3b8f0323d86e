"""The gunicorn workers' resident memory, sampled while the soak runs."""

from __future__ import annotations

import contextlib
import threading

import psutil

from tests.live import Gunicorn

# Memory may settle during the first seconds; after that a worker that grows by more than this
# (or by a fifth of its size) is leaking.
RSS_GROWTH_LIMIT = 16 * 2**20


def sample_memory(server: Gunicorn, stop: threading.Event, samples: dict[int, list[int]]) -> None:
    """Every second, the resident memory of each worker (by pid)."""
    while not stop.wait(1.0):
        for worker in server.workers():
            with contextlib.suppress(psutil.Error):
                samples.setdefault(worker.pid, []).append(worker.memory_info().rss)
