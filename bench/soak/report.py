"""A soak run's report: its figures for people, and everything that makes it a failure."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak.memory import early_and_late, memory_problems
from bench.soak.traffic import Tally


@dataclass
class Report:
    """The figures of one soak run and what went wrong in it."""

    seconds: float
    connections: int
    workers: int
    tally: Tally
    memory: dict[int, list[int]]
    rows_before: dict[str, int]
    rows_after: dict[str, int]
    leaks: list[str]
    log_path: Path
    problems: list[str] = field(default_factory=list)

    def judge(self) -> Report:
        """Fill `problems`: everything that makes this run a failure."""
        tally = self.tally
        self.problems = list(tally.failures)
        if tally.errors:
            self.problems.append(f"{tally.errors} further errors or wrong answers")
        server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
        if server_errors:
            self.problems.append(f"{server_errors} answers were 5xx")
        for kind in ("allowed", "denied", "unknown", "malformed"):
            if not tally.sent[kind]:
                self.problems.append(f"no {kind} request was sent")
        if len(self.memory) != self.workers:
            self.problems.append(f"worker pids seen: {sorted(self.memory)} (a worker restarted?)")
        self.problems += memory_problems(self.memory)
        if self.rows_before != self.rows_after:
            self.problems.append(f"rows changed: {self.rows_before} -> {self.rows_after}")
        self.problems += [f"log leak: {leak}" for leak in self.leaks]
        return self

    def lines(self) -> list[str]:
        """The figures, for people."""
        tally = self.tally
        total = sum(tally.sent.values())
        latencies = sorted(tally.latencies) or [0.0]
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        mib = 2**20
        lines = [
            f"soak: {self.seconds:.0f} s, {self.connections} connections, "
            f"{self.workers} gunicorn workers",
            f"requests: {total} ({total / self.seconds:.0f}/s); "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(tally.sent.items())),
            "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())),
            f"latency ms: p50 {quantiles[49] * 1000:.1f}, p95 {quantiles[94] * 1000:.1f}, "
            f"p99 {quantiles[98] * 1000:.1f}, max {latencies[-1] * 1000:.1f}",
        ]
        for pid, rss in sorted(self.memory.items()):
            early, late = early_and_late(rss)
            lines.append(
                f"worker {pid} RSS MiB: early {early / mib:.1f}, late {late / mib:.1f} (medians of "
                f"the first and last quarter), min {min(rss) / mib:.1f}, max {max(rss) / mib:.1f} "
                f"({len(rss)} samples)"
            )
        lines.append(f"rows unchanged: {self.rows_before == self.rows_after}")
        lines.append(f"log leaks (emails, tokens, secret): {len(self.leaks)} in {self.log_path}")
        lines.append(f"wrong answers, 5xx or errors: {len(self.problems)}")
        lines += [f"  FAIL {problem}" for problem in self.problems[:20]]
        return lines
