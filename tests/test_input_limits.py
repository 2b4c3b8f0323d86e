"""Input at and past its limits: a clear 4xx, answered quickly, never a 5xx.

The first table goes through the WSGI app; the second through a real gunicorn (the repo's
gunicorn.conf.py), whose own limits answer first for what is too big to be HTTP we read:
a request line over 4094 bytes is its 414, a header field over 8190 bytes (a 64 KiB token)
or more than 100 header fields its 431, both with gunicorn's short text/html body.
"""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from service.db import make_engine
from service.identifiers import MAX_LENGTH
from tests.dataset import Dataset, insert_dataset
from tests.leaks import leaks_in
from tests.live import running_gunicorn
from tests.tokens import Tokens

QUICKLY = 2.0  # seconds: generous for a shared CI machine; these answers take milliseconds
RUI = ("SM-1", "StaffMember")
SARA = ("SM-2", "StaffMember")
# Every test here also holds the logs to no dataset email, token or secret (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("logs_without_secrets")


PATHS = [
    # (identifier as sent, who asks, status, the field a 400 names)
    ("x" * MAX_LENGTH, RUI, 404, None),
    ("x" * (MAX_LENGTH + 1), RUI, 400, "userIdentifier"),
    (" " * 40 + "ST-000123" + " " * 40, RUI, 200, None),  # surrounding blanks are ignored
    ("x" * 100_000, RUI, 400, "userIdentifier"),
    ("ST-000123%2F" * 1000, RUI, 400, "userIdentifier"),
    ("%20", RUI, 400, "userIdentifier"),
    ("%00", RUI, 400, "userIdentifier"),
    ("a%0Ab", RUI, 400, "userIdentifier"),
    ("a%0D%0AX-Injected:%201", RUI, 400, "userIdentifier"),
    ("%7F", RUI, 400, "userIdentifier"),
    ("%E2%80%8B", RUI, 400, "userIdentifier"),  # a zero-width space is no printable character
    ("ST%FF", RUI, 400, "userIdentifier"),  # invalid UTF-8
    ("%C0%AF", RUI, 400, "userIdentifier"),  # an overlong '/'
    ("%ED%A0%80", RUI, 400, "userIdentifier"),  # an encoded surrogate
    ("%EF%BF%BD", RUI, 400, "userIdentifier"),  # U+FFFD itself: what invalid UTF-8 became
    ("id%3Anot-a-guid", RUI, 400, "userIdentifier"),
    ("%", RUI, 404, None),  # a lone '%' is taken literally (werkzeug, gunicorn): nobody's id
    ("%zz", RUI, 404, None),
    ("..%2F..%2Fetc%2Fpasswd", RUI, 404, None),
    ("ST%2F2026%2F7", SARA, 200, None),  # a reference id with '/' (README: The user identifier)
    ("a%2F%2Fb", RUI, 404, None),  # not redirected (308) to the path of 'a/b'
    ("%2F%00", RUI, 400, "userIdentifier"),  # a leading '/' reaches the parser too
    ("ST-000123%2F", RUI, 404, None),  # not redirected to ST-000123's path
    ("ST/2026/7", SARA, 200, None),
    ("ref%3Ame", RUI, 200, None),
    ("%7B1B4E28BA-2FA1-11D2-883F-0016D3CCA427%7D", RUI, 404, None),  # a GUID nobody has
    # Dataset emails in the path, as sent and at the limits: none may reach a log line.
    ("Ana.Lima@example.com", RUI, 200, None),
    ("%20%20ana.lima%40EXAMPLE.com%20%20", RUI, 200, None),
    ("email%3Abruno%40example.com", SARA, 200, None),
    ("bruno@example.com", RUI, 404, None),  # exists, another center
    ("ana.lima@example.com" + "x" * (MAX_LENGTH - 20), RUI, 404, None),
    ("ana.lima@example.com" + "x" * MAX_LENGTH, RUI, 400, "userIdentifier"),
    ("ana.lima%0A@example.com", RUI, 400, "userIdentifier"),
]


@pytest.mark.parametrize(("identifier", "caller", "status", "field"), PATHS)
def test_identifiers_at_and_past_their_limits(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    identifier: str,
    caller: tuple[str, str],
    status: int,
    field: str | None,
) -> None:
    started = time.perf_counter()
    response = client.get(f"/users/{identifier}/encounters", headers=tokens.header(*caller))
    assert time.perf_counter() - started < QUICKLY
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    if field is not None:
        assert list(response.get_json()["errors"]) == [field]


QUERIES = [
    ("from=" + "9" * 100_000, 400, "from"),
    ("unit=" + "9" * 100_000, 400, "unit"),
    ("online=" + "t" * 100_000, 400, "online"),
    ("&".join(f"p{n}={n}" for n in range(1000)), 200, None),
    ("&".join("x=1" for _ in range(1000)), 200, None),  # unknown parameters are ignored
    ("&".join("unit=1" for _ in range(300)), 400, "unit"),
    ("from=%ZZ", 400, "from"),
    ("from=%", 400, "from"),
    ("unit=%FF", 400, "unit"),
    ("%FF=%FF&unit=3", 200, None),
    ("from=2026-01-01%00", 400, "from"),
    ("=&&=&unit=3&", 200, None),
]


@pytest.mark.parametrize(("query", "status", "field"), QUERIES)
def test_query_values_at_and_past_their_limits(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    query: str,
    status: int,
    field: str | None,
) -> None:
    started = time.perf_counter()
    response = client.get(f"/users/me/encounters?{query}", headers=tokens.header(*RUI))
    assert time.perf_counter() - started < QUICKLY
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    if field is not None:
        assert list(response.get_json()["errors"]) == [field]


def test_head_and_options(client: FlaskClient, dataset: Dataset, tokens: Tokens) -> None:
    get = client.get("/users/me/encounters", headers=tokens.header(*RUI))
    head = client.head("/users/me/encounters", headers=tokens.header(*RUI))
    assert (head.status_code, head.data, head.headers["ETag"]) == (200, b"", get.headers["ETag"])
    assert client.head("/users/me/encounters").status_code == 401
    options = client.options("/users/me/encounters")
    assert options.status_code == 200
    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes, float]:
    """Send raw bytes to 127.0.0.1:port; the status, headers, body and seconds it took."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body, time.perf_counter() - started


def test_through_gunicorn(database_url: str, tmp_path: Path, tokens: Tokens) -> None:
    """The transport limits of the real server path, and what passes them."""
    engine = make_engine(database_url)
    insert_dataset(engine)
    engine.dispose()
    secret = secrets.token_urlsafe(48)
    tokens = Tokens(secret)
    token = tokens.mint(*RUI)
    auth = f"Authorization: Bearer {token}\r\n".encode()

    def get(target: bytes, headers: bytes = auth) -> bytes:
        return (
            b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers + b"\r\n"
        )

    huge = tokens.mint(*RUI, pad="x" * 65536)
    sara = f"Authorization: Bearer {tokens.mint(*SARA)}\r\n".encode()
    cases = [
        # (request, status, problem details from the app (True) or gunicorn's own page (False))
        (get(b"/users/me/encounters"), 200, False),
        (get(b"/users/me/encounters", f"Authorization: Bearer {huge}\r\n".encode()), 431, False),
        (get(b"/users/me/encounters", auth + b"".join(b"X-%d: 1\r\n" % n for n in range(101))),
         431, False),
        (get(b"/users/" + b"x" * 5000 + b"/encounters"), 414, False),
        (get(b"/users/" + b"x" * 3000 + b"/encounters"), 400, True),
        (get(b"/users/me/encounters?" + b"&".join(b"p%d=1" % n for n in range(400))), 200, False),
        (get(b"/users/ST%FF/encounters"), 400, True),
        (get(b"/users/ST%2F2026%2F7/encounters", sara), 200, False),
        (get(b"/users/a%0Ab/encounters"), 400, True),
        (get(b"/users/me/encounters?unit=1&unit=2"), 400, True),
        (get(b"/users/me/encounters?from=0001-01-01T00:00%2B01:00"), 400, True),
        (b"HEAD /users/me/encounters HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + auth + b"\r\n",
         200, False),
    ]  # fmt: skip
    with running_gunicorn(database_url, secret, tmp_path / "gunicorn.log", workers=1) as server:
        for request, status, is_problem in cases:
            got, headers, body, seconds = exchange(server.port, request)
            assert (got, request[:60]) == (status, request[:60]), body[:300]
            assert seconds < QUICKLY
            assert (headers.get("content-type") == "application/problem+json") == is_problem
            assert not leaks_in(body.decode("latin-1"), [token, huge])
        # Raw bytes that are not HTTP at all: gunicorn's 400, never a 5xx, and it keeps serving.
        got, _, _, _ = exchange(server.port, b"GET /users/\xff\x00/encounters HTTP/1.1\r\n\r\n")
        assert 400 <= got < 500
        assert exchange(server.port, get(b"/users/me/encounters"))[0] == 200
    assert not leaks_in(server.log(), [token, huge, secret])


HEADERS = [
    # (extra request headers, status)
    ({"Accept": ", ".join(f"a{n}/b{n};q=0.{n % 10}" for n in range(3000))}, 406),
    ({"Accept": "application/json;q=nan"}, 406),
    ({"Accept": ";;;,,,*/*;q=0"}, 406),
    ({"If-None-Match": 'W/"' + "x" * 10_000}, 200),
    ({"If-Modified-Since": "yesterday"}, 200),
    ({"Range": "bytes=0-10"}, 200),  # no partial answers: the whole list
    ({"X-Request-ID": "a" * 10_000}, 200),  # not echoed: a fresh id instead
    ({"X-Request-ID": "abc\tdef"}, 200),
]


@pytest.mark.parametrize(("headers", "status"), HEADERS)
def test_hostile_headers(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, headers: dict[str, str], status: int
) -> None:
    started = time.perf_counter()
    response = client.get("/users/me/encounters", headers={**tokens.header(*RUI), **headers})
    assert time.perf_counter() - started < QUICKLY
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) <= 128 and request_id != headers.get("X-Request-ID")
