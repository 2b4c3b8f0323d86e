"""A database outage (README: Errors): 503 with Retry-After, readiness 503, and recovery on its own.

PostgreSQL is made unreachable for real: the app reaches it through a TCP proxy on 127.0.0.1
that the test stops (refusing connections and cutting the open ones) and starts again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from tests.database import POSTGRES_URL, database_with_dataset
from tests.dataset import Dataset
from tests.live import Answer, Gunicorn, TcpProxy, fetch
from tests.tokens import SECRET, Tokens

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs TEST_DATABASE_URL: an outage of SQLite cannot be staged"
)
PATH = "/users/me/encounters"
ROUTE = "/users/{userIdentifier}/encounters"


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A running TCP proxy to the test's PostgreSQL server."""
    assert POSTGRES_URL is not None
    target = make_url(POSTGRES_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def config(config: dict[str, Any], proxy: TcpProxy) -> dict[str, Any]:
    """The deployment, reaching its database through the proxy."""
    url = make_url(config["DATABASE_URL"]).set(host="127.0.0.1", port=proxy.port)
    config["DATABASE_URL"] = url.render_as_string(hide_password=False)
    return config


def _assert_unavailable(client: FlaskClient, path: str, headers: dict[str, str]) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_json()
    assert body["status"] == 503
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "psycopg" not in response.get_data(as_text=True).lower()


def test_outage_answers_503_then_recovers_by_itself(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, proxy: TcpProxy
) -> None:
    headers = tokens.header("ST-000123", "Student")
    assert client.get(PATH, headers=headers).status_code == 200
    assert client.get("/health/ready").status_code == 200

    proxy.stop()
    started = time.monotonic()
    for _ in range(3):
        _assert_unavailable(client, PATH, headers)
        _assert_unavailable(client, "/health/ready", {})
    assert time.monotonic() - started < 10, "an outage must be answered quickly"
    # The process itself is fine: an orchestrator must not restart it for the database's sake.
    assert client.get("/health/live").status_code == 200

    proxy.start()
    response = client.get(PATH, headers=headers)
    assert response.status_code == 200
    assert str(dataset["lis_booked"]) in {e["Id"] for e in response.get_json()}
    assert client.get("/health/ready").status_code == 200


def test_gunicorn_workers_ride_out_an_outage(
    migrated_template: str, tmp_path: Path, proxy: TcpProxy, tokens: Tokens
) -> None:
    """The same outage under gunicorn: every worker answers 503, then every worker recovers."""
    url = make_url(database_with_dataset(migrated_template, tmp_path))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = Gunicorn(
        {"DATABASE_URL": proxied, "JWT_SECRET": SECRET, "WEB_CONCURRENCY": "2"},
        tmp_path / "server.log",
    ).start()
    headers = tokens.header("ST-000123", "Student")

    def every_worker_answers(status: int) -> list[Answer]:
        """Requests in parallel until both workers (each with its own pool) answered some."""
        start, answers = len(server.log_lines()), []
        with ThreadPoolExecutor(max_workers=4) as pool:
            while len(server.answering_workers(ROUTE, start)) < 2 and len(answers) < 200:
                answers += pool.map(lambda _: fetch(server.url + PATH, headers), range(4))
        assert server.answering_workers(ROUTE, start) == {
            worker.pid: {status} for worker in server.workers()
        }
        assert {answer.status for answer in answers} == {status}
        return answers

    try:
        every_worker_answers(200)
        proxy.stop()
        down = every_worker_answers(503)
        down += [fetch(server.url + "/health/ready") for _ in range(4)]
        assert {answer.status for answer in down} == {503}
        assert all(answer.headers["Retry-After"] for answer in down)
        proxy.start()
        every_worker_answers(200)
        assert fetch(server.url + "/health/ready").status == 200
    finally:
        assert server.stop() == 0


def test_a_connection_lost_while_pooled_is_replaced_without_a_503(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, proxy: TcpProxy
) -> None:
    """The database went away and came back between two requests: nobody sees the gap.

    The pooled connection is dead, and it was used too recently to be pinged on checkout; a
    read is safe to repeat, so the request runs again on a fresh connection.
    """
    headers = tokens.header("ST-000123", "Student")
    assert client.get(PATH, headers=headers).status_code == 200
    assert client.get("/health/ready").status_code == 200
    proxy.stop()
    proxy.start()
    response = client.get(PATH, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert str(dataset["lis_booked"]) in {e["Id"] for e in response.get_json()}
    proxy.stop()
    proxy.start()
    assert client.get("/health/ready").status_code == 200


def test_a_connection_lost_while_it_is_set_up_answers_503_not_500(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new pooled connection gets its request settings once; one that dies right then (its
    server terminated it) is a database outage like any other, and the next request recovers."""
    headers = tokens.header("ST-000123", "Student")
    setting = "service.db._SERIAL_READS"
    monkeypatch.setattr(setting, "SELECT pg_terminate_backend(pg_backend_pid())")
    _assert_unavailable(client, PATH, headers)
    monkeypatch.undo()
    assert client.get(PATH, headers=headers).status_code == 200
