"""SPEC 8 and 10: bounded staleness. Reads leave a replica that lags beyond
DATABASE_REPLICA_MAX_LAG_SECONDS, and come back once it has caught up (a replica down or promoted:
tests/test_fallback.py).

They run on a real hot standby (TEST_REPLICA_DATABASE_URL; `make scale-check` runs them
on a primary of their own, idle but for them): its replay paused, slowed, or cut off from the
primary, and the primary idle. A student books a place on the primary; their list must say
`Booked` within the bound, having said `Available` (the replica's stale answer) just before.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.models import Booking
from tests.dataset import Dataset
from tests.standby import STANDBY_URL, Standby, metric, needs_standby, reads, serving_app, switches
from tests.tokens import Tokens

PATH = "/users/me/encounters"
BOUND = 3  # seconds: reads leave a replica whose lag plus the second to the next look exceeds it


@pytest.fixture
def standby(config: dict[str, Any]) -> Iterator[Standby]:
    """The real standby of the test database, caught up; put back as it was afterwards."""
    assert STANDBY_URL is not None
    server = Standby(config["DATABASE_URL"], STANDBY_URL)
    server.wait_replayed()
    yield server
    server.restore()


@pytest.fixture
def reader(config: dict[str, Any]) -> Iterator[FlaskClient]:
    """A client of an app reading from the standby, with the test's bound."""
    for application in serving_app(
        config, DATABASE_REPLICA_URL=STANDBY_URL or "", DATABASE_REPLICA_MAX_LAG_SECONDS=str(BOUND)
    ):
        yield application.test_client()


def status(client: FlaskClient, tokens: Tokens, encounter: uuid.UUID) -> str:
    """The encounter's status in Ana's list."""
    response = client.get(PATH, headers=tokens.header("ST-000123"))
    assert response.status_code == 200, response.get_data(as_text=True)
    (item,) = [e for e in response.get_json() if e["Id"] == str(encounter)]
    return str(item["Status"])


def book(engine: Engine, dataset: Dataset) -> float:
    """Ana books the freed place, on the primary; when it committed."""
    with Session(engine) as session, session.begin():
        session.add(Booking(encounter_id=dataset["lis_freed"], user_id=dataset["ana"]))
    return time.monotonic()


def until_booked(client: FlaskClient, tokens: Tokens, dataset: Dataset, booked: float) -> float:
    """Seconds from the booking to the first `Booked` in Ana's list."""
    while status(client, tokens, dataset["lis_freed"]) != "Booked":
        assert time.monotonic() - booked < BOUND + 5, "never Booked"
        time.sleep(0.05)
    return time.monotonic() - booked


def stale_then_booked(
    client: FlaskClient, tokens: Tokens, engine: Engine, dataset: Dataset
) -> float:
    """Book; the replica's stale `Available` at once, `Booked` within the bound."""
    assert status(client, tokens, dataset["lis_freed"]) == "Available"  # a look, just made
    booked = book(engine, dataset)
    assert status(client, tokens, dataset["lis_freed"]) == "Available"  # the replica, stale
    seconds = until_booked(client, tokens, dataset, booked)
    assert seconds <= BOUND + 0.5
    return seconds


def back_on_the_replica(client: FlaskClient, tokens: Tokens, dataset: Dataset) -> None:
    """Reads return to the replica, and Ana's list never says `Available` again."""
    before, began = reads(client, "replica"), time.monotonic()
    while reads(client, "replica") == before:
        assert time.monotonic() - began < 10, "reads never came back to the replica"
        assert status(client, tokens, dataset["lis_freed"]) == "Booked"
        time.sleep(0.05)


@needs_standby
def test_a_paused_replay_sends_reads_to_the_primary_within_the_bound(
    reader: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    engine: Engine,
    standby: Standby,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "encounters.replica")
    status(reader, tokens, dataset["lis_freed"])
    standby.pause()
    stale_then_booked(reader, tokens, engine, dataset)
    assert metric(reader, "encounters_db_replica_lag_seconds") > BOUND - 1
    standby.restore()
    back_on_the_replica(reader, tokens, dataset)
    assert metric(reader, "encounters_db_replica_lag_seconds") == 0
    assert switches(caplog) == ["reads off the replica", "reads back on the replica"]


@needs_standby
def test_a_slow_replay_sends_reads_to_the_primary_until_it_catches_up(
    reader: FlaskClient, dataset: Dataset, tokens: Tokens, engine: Engine, standby: Standby
) -> None:
    standby.delay(BOUND + 2)
    stale_then_booked(reader, tokens, engine, dataset)
    # The booking replays BOUND + 2 s after its commit; then the replica serves again.
    back_on_the_replica(reader, tokens, dataset)


@needs_standby
def test_a_broken_wal_stream_sends_reads_to_the_primary(
    reader: FlaskClient, dataset: Dataset, tokens: Tokens, engine: Engine, standby: Standby
) -> None:
    # The standby has replayed all it received: caught up with itself, not with the primary.
    standby.cut()
    stale_then_booked(reader, tokens, engine, dataset)
    standby.restore()
    back_on_the_replica(reader, tokens, dataset)


@needs_standby
def test_an_idle_primary_is_no_lag(
    reader: FlaskClient, dataset: Dataset, tokens: Tokens, standby: Standby
) -> None:
    # The last commit is older than the bound: its age alone would look like a lag.
    time.sleep(max(0.0, BOUND + 0.5 - standby.commit_age()))
    assert standby.commit_age() > BOUND
    before, began = reads(reader, "primary"), time.monotonic()
    while time.monotonic() - began < 2.5:  # three looks
        assert status(reader, tokens, dataset["lis_freed"]) == "Available"
        time.sleep(0.05)
    assert reads(reader, "primary") == before
    assert metric(reader, "encounters_db_replica_lag_seconds") == 0
