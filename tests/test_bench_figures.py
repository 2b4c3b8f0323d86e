"""The benchmark's verdicts can fail: a redirect is no 200, and a small dataset judges no plan."""

from __future__ import annotations

from bench.load import Counts, counts
from bench.measure import SizeResult
from bench.targets import ANSWERS, INDEX_SCANS, SEQ_SCAN_JUDGED_FROM, judge

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
