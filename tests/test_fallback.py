"""SPEC 8 and 10: reads leave a replica that is down or promoted, for the primary (or a 503 with
DATABASE_REPLICA_FALLBACK=none), and a worker looks at the replica once a second, not per request.

The lag itself, on a real standby: tests/test_staleness.py.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from service.routing import LOOK_INTERVAL_SECONDS
from tests.database import POSTGRES_URL
from tests.dataset import Dataset
from tests.live import TcpProxy, refused_port
from tests.standby import assert_unavailable, metric, reads, serving_app, switches
from tests.tokens import Tokens

PATH = "/users/me/encounters"
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs TEST_DATABASE_URL: a replica that is not in recovery"
)


@pytest.mark.parametrize("bound", ["5", "off"])
def test_a_replica_that_is_down_sends_reads_to_the_primary(
    config: dict[str, Any],
    dataset: Dataset,
    tokens: Tokens,
    caplog: pytest.LogCaptureFixture,
    bound: str,
) -> None:
    caplog.set_level(logging.INFO, "encounters.replica")
    # With or without a bound on the lag: a replica that does not answer has no data to give.
    with refused_port() as port:
        down = f"postgresql+psycopg://postgres@127.0.0.1:{port}/encounters"
        for application in serving_app(
            config, DATABASE_REPLICA_URL=down, DATABASE_REPLICA_MAX_LAG_SECONDS=bound
        ):
            client = application.test_client()
            before = reads(client, "primary")
            for _ in range(3):
                assert client.get(PATH, headers=tokens.header()).status_code == 200
            assert client.get("/health/ready").status_code == 200
            assert reads(client, "primary") - before == 4
            assert metric(client, "encounters_db_replica_lag_seconds") == float("inf")
    # One line at the switch, none for the reads after it.
    assert switches(caplog) == ["reads off the replica"]
    (record,) = [r for r in caplog.records if r.name == "encounters.replica"]
    assert "does not answer" in record.reason and record.destination == "primary"


def test_a_replica_that_is_down_is_tried_once_a_second_not_per_request(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    # Every connection is accepted, then closed: the replica's server is gone.
    with refused_port() as gone:
        proxy = TcpProxy("127.0.0.1", gone).start()
        replica = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/encounters"
        try:
            for application in serving_app(config, DATABASE_REPLICA_URL=replica):
                client, header = application.test_client(), tokens.header()
                began = time.monotonic()
                for _ in range(40):
                    assert client.get(PATH, headers=header).status_code == 200
                elapsed = time.monotonic() - began
        finally:
            proxy.stop()
    assert 0 < proxy.accepted <= elapsed + 1


def test_a_replica_that_never_answers_costs_a_tenth_of_the_time_at_most(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    # A host that drops packets: connections wait for the connect timeout (3 s), then fail.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        replica = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/x"
        for application in serving_app(config, DATABASE_REPLICA_URL=replica):
            client, header = application.test_client(), tokens.header()
            seconds = []
            for pause in (0, 1.2, 1.2):
                time.sleep(pause)
                began = time.monotonic()
                assert client.get(PATH, headers=header).status_code == 200
                seconds.append(time.monotonic() - began)
    # The first look waited for the timeout; the next is ten looks' time later, not a second.
    assert seconds[0] >= 2.5
    assert max(seconds[1:]) < 1


@pytest.fixture
def promoted_replica(config: dict[str, Any]) -> str:
    """A server that is not in recovery, as a promoted standby is: the test server's `postgres`
    database, which has none of the service's tables (a read there would fail)."""
    return make_url(config["DATABASE_URL"]).set(database="postgres").render_as_string(False)


@needs_postgres
def test_a_promoted_replica_sends_reads_to_the_primary(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens, promoted_replica: str
) -> None:
    for application in serving_app(config, DATABASE_REPLICA_URL=promoted_replica):
        client = application.test_client()
        assert client.get(PATH, headers=tokens.header()).status_code == 200
        assert client.get("/health/ready").status_code == 200
    for application in serving_app(
        config, DATABASE_REPLICA_URL=promoted_replica, DATABASE_REPLICA_FALLBACK="none"
    ):
        client = application.test_client()
        assert_unavailable(client.get(PATH, headers=tokens.header()))
        assert_unavailable(client.get("/health/ready"))


@needs_postgres
def test_the_replica_is_looked_at_once_a_second_not_per_request(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens, promoted_replica: str
) -> None:
    statements = "encounters_db_statement_duration_seconds_count"
    header = tokens.header()
    counts = []
    for overrides in ({}, {"DATABASE_REPLICA_URL": promoted_replica}):
        for application in serving_app(config, **overrides):
            client = application.test_client()
            before, began = metric(client, statements), time.monotonic()
            for _ in range(40):
                assert client.get(PATH, headers=header).status_code == 200
            elapsed = time.monotonic() - began
            counts.append(metric(client, statements) - before)
    # Each look is two statements (the primary's WAL position, the replica's state).
    assert 0 < counts[1] - counts[0] <= 2 * (elapsed + 1)


@needs_postgres
def test_reads_that_move_to_the_primary_leave_the_replicas_kept_connection(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    """A worker keeps its connection between requests (service/db.py); when the router sends
    reads to the primary, the next read is not tried on the replica's connection first."""
    statements: list[int] = []

    def executed(connection: Any, *_args: Any) -> None:
        statements.append(connection.engine.url.port)

    database = make_url(config["DATABASE_URL"])
    proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432).start()
    replica = database.set(port=proxy.port).render_as_string(False)
    event.listen(Engine, "before_cursor_execute", executed)
    try:
        # No bound on the lag: the replica (the test database) is read while it answers.
        for application in serving_app(
            config, DATABASE_REPLICA_URL=replica, DATABASE_REPLICA_MAX_LAG_SECONDS="off"
        ):
            client, header = application.test_client(), tokens.header()
            assert client.get(PATH, headers=header).status_code == 200
            assert statements[-1] == proxy.port  # read on the replica, its connection kept
            proxy.stop()  # the replica's host is gone, the kept connection with it
            time.sleep(LOOK_INTERVAL_SECONDS + 0.2)  # the next request looks at the replica
            del statements[:]
            before = reads(client, "primary")
            assert client.get(PATH, headers=header).status_code == 200
            assert reads(client, "primary") - before == 1
    finally:
        event.remove(Engine, "before_cursor_execute", executed)
        proxy.stop()
    # Every statement after the switch ran on the primary: none was tried on the dead connection.
    assert statements and set(statements) == {database.port or 5432}
