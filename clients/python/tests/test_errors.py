"""Every error answer is an exception typed by its status, with the problem's details."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from encounters_client import (
    EncountersClient,
    EncountersError,
    Forbidden,
    InvalidParameters,
    NotAcceptable,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from tests.stub import Answer, Stub, problem

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("status", "error", "title"),
    [
        (400, InvalidParameters, "Bad Request"),
        (401, Unauthenticated, "Unauthorized"),
        (403, Forbidden, "Forbidden"),
        (404, NotFound, "Not Found"),
        (406, NotAcceptable, "Not Acceptable"),
        (503, Unavailable, "Service Unavailable"),
        (405, EncountersError, "Method Not Allowed"),
        (500, EncountersError, "Internal Server Error"),
    ],
)
def test_each_status_raises_its_error(
    stub: Stub, status: int, error: type[EncountersError], title: str
) -> None:
    stub.script = [Answer(status, problem(status, title, "why"), content_type=PROBLEM)]
    with EncountersClient(stub.url, retries=0) as client, pytest.raises(EncountersError) as raised:
        client.list_encounters("me")
    assert type(raised.value) is error
    assert (raised.value.status, raised.value.title) == (status, title)
    assert (raised.value.detail, raised.value.request_id) == ("why", "req-1")
    assert len(stub.seen) == 1, "no error but a 503 with Retry-After is tried again"


def test_invalid_parameters_say_which(stub: Stub) -> None:
    body = problem(400, "Bad Request", "invalid", errors={"unit": ["Not a valid integer."]})
    stub.script = [Answer(400, body, content_type=PROBLEM)]
    with EncountersClient(stub.url) as client, pytest.raises(InvalidParameters) as raised:
        client.list_encounters("me")
    assert raised.value.errors == {"unit": ["Not a valid integer."]}


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("7", 7.0), (None, None), ("soon", None)],
)
def test_unavailable_says_when_to_come_back(
    stub: Stub, retry_after: str | None, seconds: float | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    body = problem(503, "Service Unavailable", "down")
    stub.script = [Answer(503, body, headers, content_type=PROBLEM)]
    with EncountersClient(stub.url, timeout=1) as client, pytest.raises(Unavailable) as raised:
        client.list_encounters("me")
    assert raised.value.retry_after == seconds


def test_an_http_date_retry_after_is_seconds_from_now(stub: Stub) -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    stub.script = [Answer(503, b"", {"Retry-After": later})]
    with EncountersClient(stub.url, timeout=1) as client, pytest.raises(Unavailable) as raised:
        client.list_encounters("me")
    assert raised.value.retry_after is not None
    assert 25 < raised.value.retry_after <= 30


def test_an_answer_without_problem_details_still_has_its_status(stub: Stub) -> None:
    stub.script = [
        Answer(502, b"<html>Bad gateway</html>", {"X-Request-ID": "edge-1"}, "text/html")
    ]
    with EncountersClient(stub.url) as client, pytest.raises(EncountersError) as raised:
        client.list_encounters("me")
    assert (raised.value.status, raised.value.title) == (502, "Bad Gateway")
    assert (raised.value.detail, raised.value.request_id) == ("", "edge-1")
    assert str(raised.value) == "502 Bad Gateway"
