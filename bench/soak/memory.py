"""The gunicorn workers' resident memory, sampled while the soak runs, and its judgement."""

from __future__ import annotations

import contextlib
import statistics
import threading
from collections.abc import Iterator

import psutil

from tests.live import Gunicorn

# Four samples a second: CI's 4-second soak gives each worker about 15, enough for two windows.
SAMPLE_SECONDS = 0.25
# Fewer samples than this cannot tell growth from noise: the run fails rather than pass unjudged.
MIN_SAMPLES = 8
# A worker whose late memory exceeds its early memory by more than this (or by a fifth of its
# size) is leaking.
RSS_GROWTH_LIMIT = 16 * 2**20


def sample_memory(server: Gunicorn, stop: threading.Event, samples: dict[int, list[int]]) -> None:
    """Every SAMPLE_SECONDS, the resident memory of each worker (by pid)."""
    while not stop.wait(SAMPLE_SECONDS):
        for worker in server.workers():
            with contextlib.suppress(psutil.Error):
                samples.setdefault(worker.pid, []).append(worker.memory_info().rss)


def early_and_late(rss: list[int]) -> tuple[float, float]:
    """The medians of the first and the last quarter of the samples: one outlier moves neither."""
    window = max(1, len(rss) // 4)
    return statistics.median(rss[:window]), statistics.median(rss[-window:])


def memory_problems(samples: dict[int, list[int]]) -> Iterator[str]:
    """Each worker with too few samples to judge, or that grew from its early to its late window."""
    for pid, rss in sorted(samples.items()):
        if len(rss) < MIN_SAMPLES:
            yield f"worker {pid}: {len(rss)} memory samples, fewer than {MIN_SAMPLES} to judge"
            continue
        early, late = early_and_late(rss)
        if late - early > max(RSS_GROWTH_LIMIT, early / 5):
            yield f"worker {pid} grew from {early:.0f} to {late:.0f} bytes (median of each quarter)"
