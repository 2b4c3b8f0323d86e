"""The benchmark's verdicts can fail: a redirect is no 200, and a small dataset judges no plan."""

from __future__ import annotations

import argparse

import pytest

from bench.load import Counts, Run, counts
from bench.measure import SizeResult
from bench.mixes import Scenario
from bench.targets import ANSWERS, INDEX_SCANS, SEQ_SCAN_JUDGED_FROM, judge
from bench.versus import SIZES, report

SCRAPE = """
# TYPE encounters_db_statement_duration_seconds histogram
encounters_db_statement_duration_seconds_count 42.0
encounters_http_requests_total{method="GET",route="/users/{userIdentifier}/encounters",status="200"} 20.0
encounters_http_requests_total{method="GET",route="/users/{userIdentifier}/encounters",status="304"} 3.0
encounters_http_requests_total{method="GET",route="<unmatched>",status="308"} 2.0
encounters_http_requests_total{method="GET",route="/metrics",status="200"} 5.0
"""


def test_a_redirect_counts_as_a_non_2xx_answer() -> None:
    """wrk counts only statuses from 400 on; the server's own count sees the 3xx too."""
    assert counts(SCRAPE) == Counts(statements=42.0, requests=23.0, non_2xx=5.0)


def _size(encounters: int, non_2xx: int = 0) -> SizeResult:
    run = {"statements_per_request": 2.0, "non_2xx": non_2xx, "errors": 0,
           "requests_per_second": 100.0, "p50_ms": 5.0}  # fmt: skip
    labels = ("endpoint 20 items", "fixed body", "endpoint 20 items c1", "endpoint 500 items c1")
    return SizeResult(
        name=f"{encounters}", encounters=encounters, bookings=0, users=0, built_seconds=None,
        mean_items=20.0, mean_big_items=500.0, runs={label: dict(run) for label in labels},
        list_items={}, seq_scans=["encounters"], repeated_probes=[],
        plan_ms={"list": [1.0]}, verify_failures=[],
    )  # fmt: skip


def test_index_scans_are_judged_only_on_a_large_dataset_and_answers_always() -> None:
    small = judge([_size(10_000, non_2xx=1)], timings=False)
    assert small[INDEX_SCANS].met is None  # bench-ci's size: the planner reads small tables whole
    assert small[ANSWERS].met is False
    large = judge([_size(SEQ_SCAN_JUDGED_FROM)], timings=False)
    assert large[INDEX_SCANS].met is False and large[ANSWERS].met is True


def _run(requests_per_second: float) -> Run:
    return Run(
        label="run", connections=16, requests=int(requests_per_second * 10), seconds=10.0,
        errors=0, non_2xx=0, p50_ms=5.0, p90_ms=6.0, p99_ms=8.0, max_ms=9.0,
        app_cpu_ms_per_request=0.5, db_cpu_ms_per_request=0.2, statements_per_request=1.0,
        counted_requests=int(requests_per_second * 10),
    )  # fmt: skip


def test_the_side_by_side_verdict_is_the_means_with_each_pair_beside_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pairs at 1.15x and 0.95x: the means (1050 against 1000 req/s) decide, 1.05x, MET; a
    peer faster in both pairs makes it MISSED."""
    mixes = {size: Scenario(f"{size} items", [], [size]) for size in SIZES}
    arguments = argparse.Namespace(connections=16, seconds=10.0, repeat=2)

    def verdict(service: list[float], peer: list[float]) -> dict[str, object]:
        runs = {
            size: {"service": [_run(r) for r in service], "peer": [_run(r) for r in peer]}
            for size in SIZES
        }
        goals = report(runs, mixes, arguments)["goals"]
        return next(g for g in goals if g["goal"] == "20 items: req/s >= 1.0x the peer's")

    met = verdict([1150, 950], [1000, 1000])
    assert met == {
        "goal": "20 items: req/s >= 1.0x the peer's",
        "met": True,
        "figure": "1.05x (each pair of runs: 1.15, 0.95)",
    }
    assert (
        "| 20 items: req/s >= 1.0x the peer's | MET | 1.05x (each pair" in capsys.readouterr().out
    )
    missed = verdict([990, 1000], [1000, 1010])
    assert missed["met"] is False
    assert missed["figure"] == "0.99x (each pair of runs: 0.99, 0.99)"
