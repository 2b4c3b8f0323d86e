"""How a gunicorn sync worker ends a client's connection (service/ops/connections.py).

Through the real server (gunicorn.conf.py, one worker): a client that keeps its socket open after
its answer does not hold the worker, and a client still sending a body the app never read gets
gunicorn's lingering close (its bytes are read, no reset). And on a bare connection, with
gunicorn's own close after the hook: what the client sent beyond its request (a pipelined
request) is read before the close, so the client sees an end, not a reset. And an answer held
(corked) while gunicorn writes it is released after the last write, kept-alive connections too.
"""

from __future__ import annotations

import email.utils
import runpy
import secrets
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn import util
from gunicorn.http.body import Body, LengthReader

from service.ops.connections import release_connection
from tests.live import Gunicorn, running_gunicorn

# gunicorn's lingering close waits up to 2 s for the client's end: well below that, it did not.
AT_ONCE = 1.0


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    secret = secrets.token_urlsafe(48)
    with running_gunicorn(database_url, secret, tmp_path / "gunicorn.log", workers=1) as running:
        yield running


def answer(connection: socket.socket) -> bytes:
    """Everything the server sends until its end of the connection (its FIN)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def whole(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return len(lengths) == 1 and int(lengths[0].split(b":")[1]) == len(body)


GET = b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n"


def test_a_client_that_keeps_its_socket_open_does_not_hold_the_worker(server: Gunicorn) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as lingering:
        lingering.sendall(GET)
        first = answer(lingering)  # the whole answer and the server's end; this socket stays open
        started = time.perf_counter()
        with socket.create_connection((server.host, server.port), timeout=10) as next_client:
            next_client.sendall(GET)
            second = answer(next_client)
        waited = time.perf_counter() - started
    assert first.startswith(b"HTTP/1.1 200 ") and whole(first)
    assert second.startswith(b"HTTP/1.1 200 ") and whole(second)
    assert waited < AT_ONCE, f"the only worker waited {waited:.2f} s for the first client"


def test_pipelined_requests_get_a_whole_first_answer_and_a_clean_end(server: Gunicorn) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as client:
        client.sendall(GET + GET)  # the second is never answered: the worker closes after one
        received = answer(client)
    assert received.startswith(b"HTTP/1.1 200 ") and whole(received)
    assert received.count(b"HTTP/1.1 ") == 1


def test_a_body_the_app_never_read_gets_the_lingering_close(server: Gunicorn) -> None:
    """The app answers a POST (405) without reading its body; the client is still sending it."""
    head = b"POST /health/live HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as client:
        client.sendall(head + b"x" * 1000)
        received = answer(client)
        # The rest of the body, after the answer: the server still reads it, so its end is the
        # close the client waits for, not a reset (which could erase an answer not yet read).
        client.sendall(b"x" * 50_000)
        client.shutdown(socket.SHUT_WR)
        try:
            end = client.recv(1)
        except ConnectionResetError:
            end = None
    assert received.startswith(b"HTTP/1.1 405 ") and whole(received)
    assert end == b""


def test_answers_on_a_kept_alive_connection_leave_at_once(
    database_url: str, tmp_path: Path
) -> None:
    """With threads (gthread keeps connections alive) an answer is not left corked: each leaves
    when it is written, not when the kernel gives up holding it (200 ms) or the connection ends."""
    secret = secrets.token_urlsafe(48)
    threads = {"GUNICORN_THREADS": "2"}
    log = tmp_path / "gunicorn.log"
    with (
        running_gunicorn(database_url, secret, log, workers=1, environment=threads) as server,
        socket.create_connection((server.host, server.port), timeout=10) as client,
    ):
        took = []
        for _ in range(5):
            started = time.perf_counter()
            client.sendall(GET)
            response = one_answer(client)
            took.append(time.perf_counter() - started)
            assert response.startswith(b"HTTP/1.1 200 ") and whole(response)
            assert b"connection: close" not in response.lower()  # still the same connection
    assert statistics.median(took) < 0.1, took


def one_answer(connection: socket.socket) -> bytes:
    """One answer of a connection that stays open: its head, then as much body as it announces."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    while not whole(received):
        received += connection.recv(65536)
    return received


class _Request:
    body = Body(LengthReader(None, 0))  # no body, or one read to its end


class _Response:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def should_close(self) -> bool:
        return True


def test_bytes_already_received_are_read_before_the_close() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        served, _ = listener.accept()
        with client, served:
            # A request the worker will never read (the next, pipelined one) is already there.
            client.sendall(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            served.settimeout(10)
            assert served.recv(1, socket.MSG_PEEK) == b"G"
            release_connection(_Request(), _Response(served), is_ssl=False)
            started = time.perf_counter()
            util.close_graceful(served)  # what the sync worker does next
            closing = time.perf_counter() - started
            try:
                end = client.recv(1)
            except ConnectionResetError:
                end = None
    assert closing < AT_ONCE
    assert end == b""


def test_an_answer_has_one_date_the_current_second(server: Gunicorn) -> None:
    """gunicorn writes the Date header (the app's is dropped as its own): one, IMF-fixdate, now."""
    before = int(time.time())
    with socket.create_connection((server.host, server.port), timeout=10) as client:
        client.sendall(GET)
        head = answer(client).partition(b"\r\n\r\n")[0].decode()
    after = time.time()
    dates = [line[6:] for line in head.split("\r\n") if line.lower().startswith("date: ")]
    assert len(dates) == 1, head
    sent = email.utils.parsedate_to_datetime(dates[0]).timestamp()
    assert before <= sent <= after and dates[0] == email.utils.formatdate(sent, usegmt=True)


def test_gunicorn_dates_answers_with_the_services_date(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """gunicorn.conf.py hands gunicorn the service's date, formatted once a second, not per answer."""
    monkeypatch.setattr(util, "http_date", util.http_date)  # gunicorn's own again after the test
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("JWT_SECRET", secrets.token_urlsafe(48))
    runpy.run_path("gunicorn.conf.py")
    formatted: list[float] = []
    formatdate = email.utils.formatdate
    monkeypatch.setattr(
        email.utils,
        "formatdate",
        lambda when, **kw: formatted.append(when) or formatdate(when, **kw),
    )
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.25)
    assert util.http_date() == util.http_date() == "Fri, 15 Jan 2027 08:00:00 GMT"
    assert len(formatted) <= 1  # the second answer of that second reuses the first's
    assert util.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"  # a given time, as gunicorn
