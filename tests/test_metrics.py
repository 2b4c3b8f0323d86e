"""/metrics: Prometheus text format, and totals that add up across several gunicorn workers."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.database import database_with_dataset
from tests.live import Gunicorn, fetch
from tests.tokens import SECRET, Tokens

ROUTE = "/users/{userIdentifier}/encounters"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0 when absent."""
    return scrape.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_prometheus_text_and_unauthenticated(client: FlaskClient) -> None:
    client.get("/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    scrape = samples(response.get_data(as_text=True))
    assert value(scrape, "encounters_http_requests_total", method="GET", route="/health/live",
                 status="200") >= 1  # fmt: skip
    names = {name for name, _ in scrape}
    assert {
        "encounters_http_request_duration_seconds_bucket",
        "encounters_db_statement_duration_seconds_count",
        "encounters_resolver_duration_seconds_sum",
    } <= names


def test_made_up_methods_and_paths_add_no_series(client: FlaskClient) -> None:
    """Anyone can send any method token and path without a token: the labels stay a closed set."""

    def series() -> set[tuple[str, frozenset[tuple[str, str]]]]:
        return set(samples(client.get("/metrics").get_data(as_text=True)))

    client.open("/health/live", method="QZ0000X")
    client.open("/no/such/path/0", method="ZQ0000Y")
    client.get("/no/such/path/0")
    series()  # the scrape's own series
    before = series()
    for n in range(1, 200):
        assert client.open(f"/health/live?{n}", method=f"QZ{n:04}X").status_code == 405
        assert client.open(f"/no/such/path/{n}", method=f"ZQ{n:04}Y").status_code in (404, 405)
        assert client.get(f"/no/such/path/{n}").status_code == 404
    assert series() == before
    scrape = samples(client.get("/metrics").get_data(as_text=True))
    assert value(scrape, "encounters_http_requests_total", method="other", route="<unmatched>",
                 status="405") >= 199  # fmt: skip
    assert value(scrape, "encounters_http_requests_total", method="GET", route="<unmatched>",
                 status="404") >= 199  # fmt: skip


def test_every_request_counts_once_in_its_own_series(client: FlaskClient) -> None:
    """The hook keeps each series' children: each request still adds exactly one, to its own."""
    requests = "encounters_http_requests_total"
    durations = "encounters_http_request_duration_seconds_count"
    # (method, path) -> (method label, route label, status)
    answers = {("GET", "/health/live"): ("GET", "/health/live", "200"),
               ("HEAD", "/health/live"): ("HEAD", "/health/live", "200"),
               ("GET", "/no/such/path"): ("GET", "<unmatched>", "404"),
               ("QZX", "/health/live"): ("other", "<unmatched>", "405")}  # fmt: skip
    for method, path in answers:  # every series exists already
        client.open(path, method=method)
    before = samples(client.get("/metrics").get_data(as_text=True))
    for round_ in range(1, 4):
        for (method, path), (_, _, status) in answers.items():
            assert client.open(path, method=method).status_code == int(status)
        after = samples(client.get("/metrics").get_data(as_text=True))
        for method, route, status in answers.values():
            added = value(after, requests, method=method, route=route, status=status) - value(
                before, requests, method=method, route=route, status=status
            )
            timed = value(after, durations, method=method, route=route) - value(
                before, durations, method=method, route=route
            )
            assert (added, timed) == (round_, round_), (method, route, status)


@pytest.fixture(scope="module")
def server(migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """gunicorn with two workers over the known dataset."""
    directory = tmp_path_factory.mktemp("metrics")
    url = database_with_dataset(migrated_template, directory)
    server = Gunicorn(
        {"DATABASE_URL": url, "JWT_SECRET": SECRET, "WEB_CONCURRENCY": "2"},
        directory / "server.log",
    ).start()
    yield server
    server.stop()


def test_totals_add_up_across_workers(server: Gunicorn) -> None:
    tokens = Tokens()
    student = {"Authorization": f"Bearer {tokens.mint('ST-000123', 'Student')}"}
    before = samples(fetch(f"{server.url}/metrics").body.decode())
    plan = [("/users/me/encounters", student)] * 3 + [("/users/me/encounters", {})]

    sent: Counter[str] = Counter()
    # Requests in parallel until both workers have answered some (bounded: 400 requests).
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(100):
            answers = list(pool.map(lambda p: fetch(server.url + p[0], p[1]), plan))
            sent.update(str(answer.status) for answer in answers)
            if len(server.answering_workers(ROUTE)) >= 2:
                break
    assert len(server.answering_workers(ROUTE)) >= 2, "both workers should have answered"
    assert set(sent) == {"200", "401"}

    after = samples(fetch(f"{server.url}/metrics").body.decode())
    for status, count in sent.items():
        labels = {"method": "GET", "route": ROUTE, "status": status}
        counted = value(after, "encounters_http_requests_total", **labels) - value(
            before, "encounters_http_requests_total", **labels
        )
        assert counted == count
    timed = value(after, "encounters_http_request_duration_seconds_count", method="GET",
                  route=ROUTE) - value(before, "encounters_http_request_duration_seconds_count",
                                       method="GET", route=ROUTE)  # fmt: skip
    assert timed == sum(sent.values())
    # Only authenticated requests reach the resolver and the database: one resolve each.
    resolves = value(after, "encounters_resolver_duration_seconds_count") - value(
        before, "encounters_resolver_duration_seconds_count"
    )
    assert resolves == sent["200"]
    statements = value(after, "encounters_db_statement_duration_seconds_count") - value(
        before, "encounters_db_statement_duration_seconds_count"
    )
    assert statements >= sent["200"]  # one a student's list on PostgreSQL, else two
    assert value(after, "encounters_db_statement_duration_seconds_sum") > value(
        before, "encounters_db_statement_duration_seconds_sum"
    )


MEMORY = Path("/dev/shm")


@pytest.mark.skipif(
    not (MEMORY.is_dir() and os.access(MEMORY, os.W_OK) and Path("/proc/self/maps").exists()),
    reason="needs Linux's /proc and a writable /dev/shm",
)
def test_what_a_worker_writes_on_every_request_is_in_memory(server: Gunicorn) -> None:
    """gunicorn.conf.py's defaults: each worker's heartbeat file (touched per request) and its
    metric files (written per request) are in /dev/shm, not on a disk that may stall them."""
    assert fetch(f"{server.url}/health/live").status == 200
    for worker in server.workers():
        files = [os.readlink(f"/proc/{worker.pid}/fd/{fd}") for fd in os.listdir(
            f"/proc/{worker.pid}/fd")]  # fmt: skip
        # The heartbeat: a temporary file gunicorn unlinks at once and keeps open.
        assert any(f.startswith(f"{MEMORY}/") and f.endswith("(deleted)") for f in files), files
        mapped = Path(f"/proc/{worker.pid}/maps").read_text()
        assert f"{MEMORY}/encounters-metrics-" in mapped


def test_a_restarted_worker_keeps_the_totals(server: Gunicorn) -> None:
    """gunicorn replaces a killed worker; what the dead one counted stays in the totals."""
    before = _route_totals(fetch(f"{server.url}/metrics").body.decode())
    assert before > 0
    booted = _boots(server)
    os.kill(next(iter(server.answering_workers(ROUTE))), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while _boots(server) == booted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _boots(server) == booted + 1, "gunicorn should have booted a new worker"
    for _ in range(4):  # whichever worker answers the scrape
        assert _route_totals(fetch(f"{server.url}/metrics").body.decode()) == before


def _route_totals(text: str) -> float:
    return sum(
        count
        for (name, labels), count in samples(text).items()
        if name == "encounters_http_requests_total" and ("route", ROUTE) in labels
    )


def _boots(server: Gunicorn) -> int:
    return sum("Booting worker" in line for line in server.log_lines())


def test_a_scrape_while_a_worker_creates_its_file_answers(
    migrated_template: str, tmp_path: Path
) -> None:
    """A worker's file exists empty for a moment before it is sized: the scrape still answers 200."""
    url = database_with_dataset(migrated_template, tmp_path)
    folder = tmp_path / "metrics"
    server = Gunicorn(
        {"DATABASE_URL": url, "JWT_SECRET": SECRET, "WEB_CONCURRENCY": "1",
         "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        tmp_path / "server.log",
    ).start()  # fmt: skip
    try:
        fetch(f"{server.url}/health/live")
        (folder / "counter_4194000.db").touch()  # as prometheus-client's open(), before truncate()
        scrape = fetch(f"{server.url}/metrics")
        assert scrape.status == 200
        assert value(samples(scrape.body.decode()), "encounters_http_requests_total",
                     method="GET", route="/health/live", status="200") >= 1  # fmt: skip
    finally:
        server.stop()
