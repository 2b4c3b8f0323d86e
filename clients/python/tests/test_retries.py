"""Retries: a 503 with Retry-After and a connection that fails before any answer, within budget."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from encounters_client import EncountersClient, EncountersError, Unavailable
from tests.stub import DROP, ENCOUNTER, Answer, Stub, problem

UNAVAILABLE = problem(503, "Service Unavailable", "down")


def _unavailable(retry_after: str | None) -> Answer:
    return Answer(503, UNAVAILABLE, {"Retry-After": retry_after} if retry_after else {})


def test_a_503_with_retry_after_is_tried_again_after_the_wait(stub: Stub) -> None:
    stub.script = [_unavailable("1"), Answer(200, [ENCOUNTER])]
    started = time.monotonic()
    with EncountersClient(stub.url) as client:
        assert len(client.list_encounters("me")) == 1
    assert time.monotonic() - started >= 1, "the wait the service asked for"
    assert len(stub.seen) == 2


def test_retries_are_bounded(stub: Stub) -> None:
    stub.script = [_unavailable("0")]
    with EncountersClient(stub.url, retries=2) as client, pytest.raises(Unavailable):
        client.list_encounters("me")
    assert len(stub.seen) == 3


def test_a_wait_beyond_the_timeout_is_not_waited(stub: Stub) -> None:
    stub.script = [_unavailable("5"), Answer(200, [])]
    started = time.monotonic()
    with EncountersClient(stub.url, timeout=2) as client, pytest.raises(Unavailable) as raised:
        client.list_encounters("me")
    assert time.monotonic() - started < 1
    assert raised.value.retry_after == 5
    assert len(stub.seen) == 1


@pytest.mark.parametrize(
    "answer",
    [
        _unavailable(None),
        Answer(500, problem(500, "Internal Server Error", "bug"), {"Retry-After": "0"}),
        Answer(502, b"", {"Retry-After": "0"}),
        Answer(429, b"", {"Retry-After": "0"}),
    ],
)
def test_nothing_else_is_tried_again(stub: Stub, answer: Answer) -> None:
    stub.script = [answer, Answer(200, [])]
    with EncountersClient(stub.url) as client, pytest.raises(EncountersError):
        client.list_encounters("me")
    assert len(stub.seen) == 1


def test_a_connection_closed_before_any_answer_is_tried_again(stub: Stub) -> None:
    stub.script = [DROP, DROP, Answer(200, [ENCOUNTER])]
    with EncountersClient(stub.url, retries=2) as client:
        assert len(client.list_encounters("me")) == 1
    assert len(stub.seen) == 3


def test_a_connection_that_keeps_failing_raises_httpx_error(stub: Stub) -> None:
    stub.script = [DROP]
    with EncountersClient(stub.url, retries=1) as client, pytest.raises(httpx.TransportError):
        client.list_encounters("me")
    assert len(stub.seen) == 2


def test_a_refused_connection_is_tried_again_within_the_timeout() -> None:
    with socket.socket() as closed:  # a port that nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = EncountersClient(f"http://127.0.0.1:{port}", timeout=0.25, retries=10)
    started = time.monotonic()
    with client, pytest.raises(httpx.ConnectError):
        client.list_encounters("me")
    # Tried again after 0.1 s; a second wait (0.2 s more) would pass the 0.25 s budget.
    assert 0.1 <= time.monotonic() - started < 0.5


def test_a_slow_answer_is_not_tried_again(stub: Stub) -> None:
    stub.script = [Answer(200, [], delay=1.0)]
    started = time.monotonic()
    with EncountersClient(stub.url, timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.list_encounters("me")
    assert time.monotonic() - started < 0.9
    assert len(stub.seen) == 1
