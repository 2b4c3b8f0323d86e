"""The Python client (clients/python) against the real service: gunicorn on a real database.

Each promise of clients/python/README.md, as a caller meets it: every spelling of a user answers
what plain HTTP answers, each problem status is its error, a 503 with Retry-After is waited out,
a 304 gives the remembered list, the async client answers alike, and the caller's trace goes on.
Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set (the outage needs PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from encounters_client import (
    AsyncEncountersClient,
    Encounter,
    EncountersClient,
    EncountersError,
    Forbidden,
    InvalidParameters,
    NotAcceptable,
    NotFound,
    Unauthenticated,
    Unavailable,
    problem_error,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from service.db import make_engine
from service.directory import Role
from service.models import User, lookup_key
from tests.database import POSTGRES_URL, database_with_dataset
from tests.dataset import dataset_id
from tests.live import Gunicorn, OtlpReceiver, TcpProxy, fetch, running_gunicorn
from tests.tokens import SECRET, Tokens

# Students of Lisbon in unit 3 (so each has encounters), whose reference ids or emails need
# encoding: (reference id, email).
SPELLED = [
    ("ST+2026+8", "ana+tag@example.com"),
    ("ST 2026 9", "st9@example.com"),
    ("Élève-10", "eleve@example.com"),
    ("..", "dots@example.com"),
    ("ST#11?unit=4&50%", "hash@example.com"),
]
# (identifier as the caller has it, the path segment a careful curl user writes, who asks).
SPELLINGS = [
    ("ST/2026/7", "ST%2F2026%2F7", "SM-2"),
    ("ST+2026+8", "ST%2B2026%2B8", "SM-1"),
    ("ana+tag@example.com", "ana%2Btag%40example.com", "SM-1"),
    ("ST 2026 9", "ST%202026%209", "SM-1"),
    ("Élève-10", "%C3%89l%C3%A8ve-10", "SM-1"),
    ("ÉLÈVE-10", "%C3%89L%C3%88VE-10", "SM-1"),
    ("..", "%2E%2E", "SM-1"),
    ("ST#11?unit=4&50%", "ST%2311%3Funit%3D4%2650%25", "SM-1"),
    (" ST-000123 ", "%20ST-000123%20", "SM-1"),
    (f"{{{dataset_id('ana')}}}", f"%7B{dataset_id('ana')}%7D", "SM-1"),
]


@pytest.fixture(scope="module")
def database(migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The known dataset and the students of SPELLED, for every server of this module."""
    url = database_with_dataset(migrated_template, tmp_path_factory.mktemp("client"))
    _add_students(url)
    return url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """gunicorn over `database`."""
    log = tmp_path_factory.mktemp("client-server") / "server.log"
    with running_gunicorn(database, SECRET, log) as server:
        yield server


def _add_students(url: str) -> None:
    engine = make_engine(url)
    with Session(engine) as session:
        session.add_all(
            User(
                id=uuid.uuid5(uuid.NAMESPACE_URL, f"encounters-client-test/{reference}"),
                email=email,
                email_key=lookup_key(email),
                reference_id=reference,
                reference_key=lookup_key(reference),
                role=Role.STUDENT,
                center_id=dataset_id("lisbon"),
                current_unit=3,
            )
            for reference, email in SPELLED
        )
        session.commit()
    engine.dispose()


@pytest.mark.parametrize(("identifier", "segment", "caller"), SPELLINGS)
def test_every_spelling_answers_what_plain_http_answers(
    server: Gunicorn, tokens: Tokens, identifier: str, segment: str, caller: str
) -> None:
    token = tokens.mint(caller, "StaffMember")
    plain = fetch(f"{server.url}/users/{segment}/encounters", {"Authorization": f"Bearer {token}"})
    assert plain.status == 200, plain.body
    assert plain.json(), "a spelling that reaches nobody would prove nothing"
    with EncountersClient(server.url, token=token) as client:
        answer = client.list_encounters(identifier)
    assert answer == [Encounter.from_wire(item) for item in plain.json()]


def test_an_offset_in_the_query_arrives_as_sent(server: Gunicorn, tokens: Tokens) -> None:
    """`+01:00` goes as %2B01:00: unencoded, the service would read a space (and answer 400)."""
    token = tokens.mint("SM-1", "StaffMember")
    starts = datetime.now(timezone(timedelta(hours=1))).replace(microsecond=0)
    query = urlencode({"from": starts.isoformat(), "to": (starts + timedelta(days=10)).isoformat()})
    plain = fetch(
        f"{server.url}/users/ST-000123/encounters?{query}", {"Authorization": f"Bearer {token}"}
    )
    assert "%2B01%3A00" in query and plain.status == 200 and plain.json()
    with EncountersClient(server.url, token=token) as client:
        answer = client.list_encounters(
            "ST-000123", starts=starts, ends=starts + timedelta(days=10)
        )
    assert answer == [Encounter.from_wire(item) for item in plain.json()]


STUDENT = ("ST-000123", "Student")
# (the call's arguments, the token's subject and role or None, plain HTTP's path, the error)
PROBLEMS: list[tuple[dict[str, Any], tuple[str, str] | None, str, type[EncountersError]]] = [
    ({"unit": 0}, STUDENT, "/users/me/encounters?unit=0", InvalidParameters),
    (
        {"starts": datetime(2026, 12, 1, 8)},  # naive: the service judges it
        STUDENT,
        "/users/me/encounters?from=2026-12-01T08:00:00",
        InvalidParameters,
    ),
    ({"user": "id:nope"}, STUDENT, "/users/id:nope/encounters", InvalidParameters),
    ({}, None, "/users/me/encounters", Unauthenticated),
    ({}, ("ST-000123", "Admin"), "/users/me/encounters", Forbidden),
    ({"user": "nobody@example.com"}, STUDENT, "/users/nobody%40example.com/encounters", NotFound),
    ({"user": "ST/2026/7"}, STUDENT, "/users/ST%2F2026%2F7/encounters", NotFound),
]


@pytest.mark.parametrize(("arguments", "caller", "path", "error"), PROBLEMS)
def test_each_problem_status_is_its_error(
    server: Gunicorn,
    tokens: Tokens,
    arguments: dict[str, Any],
    caller: tuple[str, str] | None,
    path: str,
    error: type[EncountersError],
) -> None:
    token = tokens.mint(*caller) if caller else None
    plain = fetch(server.url + path, {"Authorization": f"Bearer {token}"} if token else {})
    arguments = {"user": "me", **arguments}
    with EncountersClient(server.url, token=token) as client, pytest.raises(error) as raised:
        client.list_encounters(arguments.pop("user"), **arguments)
    problem = plain.json()
    assert (raised.value.status, raised.value.title) == (problem["status"], problem["title"])
    assert raised.value.detail == problem["detail"]
    assert raised.value.request_id and raised.value.request_id != problem["request_id"]
    if isinstance(raised.value, InvalidParameters):
        assert raised.value.errors == problem["errors"]


def test_a_406_is_not_acceptable(server: Gunicorn, tokens: Tokens) -> None:
    """The client always asks for JSON; a caller's own request with another Accept maps alike."""
    headers = {"Accept": "image/png", **tokens.header()}
    response = httpx.get(f"{server.url}/users/me/encounters", headers=headers)
    error = problem_error(response)
    assert isinstance(error, NotAcceptable)
    assert (error.status, error.detail) == (406, response.json()["detail"])
    assert error.request_id == response.headers["X-Request-ID"]


def test_a_304_returns_the_remembered_list(server: Gunicorn, tokens: Tokens) -> None:
    before = _statuses(server).count(304)
    with EncountersClient(server.url, token=tokens.mint(*STUDENT), etag_cache=True) as client:
        first = client.list_encounters("me", unit=3)
        second = client.list_encounters("me", unit=3)
    assert first and second == first
    assert _statuses(server).count(304) == before + 1


def test_the_async_client_answers_the_same(server: Gunicorn, tokens: Tokens) -> None:
    token = tokens.mint("SM-1", "StaffMember")
    identifiers = [identifier for identifier, _, caller in SPELLINGS if caller == "SM-1"]
    with EncountersClient(server.url, token=token) as client:
        expected = [client.list_encounters(identifier) for identifier in identifiers]

    async def calls() -> tuple[list[list[Encounter]], list[Encounter], EncountersError]:
        async with AsyncEncountersClient(server.url, token=token, etag_cache=True) as client:
            answers = await asyncio.gather(*map(client.list_encounters, identifiers))
            again = await client.list_encounters(identifiers[0])
            with pytest.raises(NotFound) as raised:
                await client.list_encounters("nobody@example.com")
            return list(answers), again, raised.value

    before = _statuses(server).count(304)
    answers, again, missing = asyncio.run(calls())
    assert answers == expected
    assert again == expected[0]
    assert _statuses(server).count(304) == before + 1
    assert missing.status == 404


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TEST_DATABASE_URL: a database outage")
def test_a_503_with_retry_after_is_waited_out(
    database: str, tmp_path: Path, tokens: Tokens
) -> None:
    """The database goes away: the service answers 503 with Retry-After, the client waits as
    told (unless its timeout cannot hold the wait) and asks again; the database is back by
    then, so the caller gets the list."""
    assert POSTGRES_URL is not None
    target = make_url(POSTGRES_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    url = make_url(database)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    token = tokens.mint(*STUDENT)
    back = threading.Timer(0.5, proxy.start)
    try:
        with running_gunicorn(proxied, SECRET, tmp_path / "server.log", workers=1) as server:
            proxy.stop()
            with EncountersClient(server.url, token=token, timeout=3) as short:
                started = time.monotonic()
                with pytest.raises(Unavailable) as raised:
                    short.list_encounters("me")
            told = raised.value.retry_after
            assert told is not None and told > 3, "the service asks for 5 s"
            assert time.monotonic() - started < 3, "a wait beyond the timeout is not waited"

            back.start()  # the database is back 0.5 s later, before the wait ends
            with EncountersClient(server.url, token=token, timeout=told + 15) as client:
                started = time.monotonic()
                answer = client.list_encounters("me")
            assert answer and time.monotonic() - started >= told
            assert _statuses(server) == [503, 503, 200]
    finally:
        back.cancel()
        proxy.stop()


def test_the_callers_trace_goes_on_in_the_service(
    database: str, tmp_path: Path, tokens: Tokens
) -> None:
    receiver = OtlpReceiver().start()
    tracing = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "encounters-under-test",
    }
    tracer = TracerProvider().get_tracer("caller")
    try:
        with (
            running_gunicorn(
                database, SECRET, tmp_path / "s.log", workers=1, environment=tracing
            ) as s,
            EncountersClient(s.url, token=tokens.mint(*STUDENT)) as client,
        ):
            with tracer.start_as_current_span("caller") as span:
                assert client.list_encounters("me")
            client.list_encounters("me")  # no span active: no traceparent
    finally:
        receiver.stop()
    caller = span.get_span_context()
    servers = [
        (exported.trace_id.hex(), exported.parent_span_id.hex())
        for request in receiver.requests
        for resources in request.resource_spans
        for scope in resources.scope_spans
        for exported in scope.spans
        if exported.name == "GET /users/{userIdentifier}/encounters"
    ]
    assert len(servers) == 2
    assert servers[0] == (format_trace_id(caller.trace_id), format_span_id(caller.span_id))
    assert servers[1][0] != servers[0][0] and servers[1][1] == ""


def _statuses(server: Gunicorn) -> list[int]:
    """The statuses of the encounter requests the server answered so far, in order."""
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    return [
        line["status"]
        for line in lines
        if line.get("logger") == "encounters.access" and "/encounters" in line.get("route", "")
    ]
