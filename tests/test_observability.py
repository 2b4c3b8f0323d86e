"""Request ids and logs (docs/operations.md): X-Request-ID in and out; one JSON object a line, with the
request id; no email, token or secret in any line over a full run of the real server."""

from __future__ import annotations

import datetime
import io
import json
import logging
import logging.config
import re
import runpy
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gunicorn.config
import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from service.ops.logs import ACCESS_LOGGER
from tests.database import database_with_dataset
from tests.dataset import USERS
from tests.leaks import leaks_in, log_text
from tests.live import Answer, Gunicorn, fetch
from tests.tokens import SECRET, Tokens

ROUTE = "/users/{userIdentifier}/encounters"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "offered", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:1.2_3", "A" * 128]
)
def test_well_formed_request_id_is_kept(client: FlaskClient, offered: str) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": offered})
    assert response.headers["X-Request-ID"] == offered


@pytest.mark.parametrize(
    "offered", ["", "has space", "A" * 129, "ana@example.com", "-leading", "semi;colon", "é"]
)
def test_malformed_request_id_is_replaced(client: FlaskClient, offered: str) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": offered})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_every_response_has_a_new_id_and_problems_repeat_it(client: FlaskClient) -> None:
    first = client.get("/users/me/encounters")
    second = client.get("/users/me/encounters")
    assert first.status_code == second.status_code == 401
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert first.get_json()["request_id"] == first.headers["X-Request-ID"]


def _full_run(base: str, tokens: Tokens) -> tuple[list[Answer], list[str]]:
    """Every kind of request a day brings; returns the answers and every secret sent."""
    ana = tokens.mint("Ana.Lima@example.com", "Student")
    rui = tokens.mint("rui@example.com", "StaffMember")
    forged = tokens.mint("bruno@example.com", "Student").rsplit(".", 1)[0] + ".Zm9yZ2Vk"
    expired = tokens.mint("carla@example.com", "Student", exp=1_000_000)
    other_secret = Tokens("another-secret-that-is-long-enough-0123").mint("SM-1", "StaffMember")
    sent = [ana, rui, forged, expired, other_secret]

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    email_path = "/users/" + urllib.parse.quote("Ana.Lima@example.com") + "/encounters"
    requests = [
        ("GET", "/users/Ana.Lima@example.com/encounters", bearer(ana)),
        ("GET", email_path, bearer(ana)),
        ("GET", "/users/email:ANA.LIMA@EXAMPLE.COM/encounters?online=true", bearer(ana)),
        ("HEAD", "/users/me/encounters", bearer(ana)),
        ("GET", "/users/bruno@example.com/encounters", bearer(ana)),
        ("GET", "/users/carla@example.com/encounters", bearer(rui)),
        ("GET", "/users/ana.lima@example.com/encounters?from=yesterday", bearer(rui)),
        ("GET", "/users/me/encounters", bearer(forged)),
        ("GET", "/users/me/encounters", bearer(expired)),
        ("GET", "/users/me/encounters", bearer(other_secret)),
        ("GET", "/users/me/encounters", {"Authorization": f"bearer {SECRET}"}),
        ("GET", "/users/sara@example.com/encounters", {}),
        ("POST", "/users/ana.lima@example.com/encounters", bearer(ana)),
        ("GET", "/no/such/page/odd@example.com", bearer(ana)),
        ("GET", "/health/live", {"X-Request-ID": "caller-supplied-0001"}),
        ("GET", "/health/ready", {"X-Request-ID": "g@example.com"}),
        ("GET", "/metrics", {}),
        ("GET", "/docs", {}),
        ("GET", "/openapi.json", {}),
    ]
    answers = [fetch(base + path, headers, method) for method, path, headers in requests]
    return answers, sent


def test_logs_of_a_full_run_are_json_lines_without_secrets(
    migrated_template: str, tmp_path: Path, tokens: Tokens
) -> None:
    url = database_with_dataset(migrated_template, tmp_path)
    server = Gunicorn(
        {"DATABASE_URL": url, "JWT_SECRET": SECRET, "WEB_CONCURRENCY": "2"},
        tmp_path / "server.log",
    ).start()
    try:
        answers, sent = _full_run(server.url, tokens)
    finally:
        assert server.stop() == 0
    statuses = [answer.status for answer in answers]
    assert statuses == [200, 200, 200, 200, 404, 200, 400, 401, 401, 401, 401, 401, 405, 404,
                        200, 200, 200, 200, 200]  # fmt: skip

    lines = [line for line in server.log_lines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(
        isinstance(r, dict) and {"level", "logger", "message", "time"} <= set(r) for r in records
    )

    text = "\n".join(lines).lower()
    forbidden = [SECRET, *sent, *(token.rsplit(".", 1)[1] for token in sent)]
    forbidden += [user.email for user in USERS.values()]
    forbidden += [urllib.parse.quote(user.email) for user in USERS.values()]
    forbidden += ["odd@example.com", "g@example.com", "authorization", "bearer "]
    leaked = [secret for secret in forbidden if secret.lower() in text]
    assert leaked == []

    access = {r["request_id"]: r for r in records if r["logger"] == "encounters.access"}
    answered = {answer.headers["X-Request-ID"] for answer in answers}
    assert len(answered) == len(answers) and answered <= set(access)
    for answer in answers:
        line = access[answer.headers["X-Request-ID"]]
        assert line["status"] == answer.status
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
        assert line["method"] in {"GET", "HEAD", "POST"}
    routes = [access[a.headers["X-Request-ID"]]["route"] for a in answers]
    assert routes[:12] == [ROUTE] * 12
    # A wrong method or an unknown path matches no route: one label, whatever the path said.
    assert routes[12:] == ["<unmatched>", "<unmatched>", "/health/live", "/health/ready", "/metrics", "/docs",
                           "/openapi.json"]  # fmt: skip
    assert "caller-supplied-0001" in access
    # Shut down gracefully: the master says so, and nothing was killed.
    assert any(r["message"] == "Shutting down: Master" for r in records)


def test_formatter_masks_whatever_a_message_carries(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from service.ops.logs import RedactingJsonFormatter

    monkeypatch.setenv("JWT_SECRET", SECRET)
    token = Tokens().mint("ana@example.com")
    message = (
        f"user Ana.Lima@Example.com at /users/ana%40example.com/encounters sent "
        f"Authorization: Bearer {token} and {token}; db postgresql://app:hunter22@db/x; {SECRET}"
    )
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, message, None, None)
    line = RedactingJsonFormatter("{message}", style="{").format(record)
    logged = json.loads(line)["message"]
    for secret in ("Ana.Lima@Example.com", "ana%40example.com", token, "hunter22", SECRET):
        assert secret not in logged
    assert "[email]" in logged and "Bearer [redacted]" in logged and "[secret]" in logged


def test_a_line_is_ascii_json_whatever_it_carries() -> None:
    """Non-ASCII text is escaped (a log stream may not be UTF-8); orjson's limits lose no line."""
    from service.ops.logs import RedactingJsonFormatter

    formatter = RedactingJsonFormatter("{message}", style="{")
    text = logging.LogRecord("t", logging.INFO, __file__, 1, "café ✓ \x01", None, None)
    line = formatter.format(text)
    assert line.isascii() and json.loads(line)["message"] == "café ✓ \x01"
    number = logging.LogRecord("t", logging.INFO, __file__, 1, "counted", None, None)
    number.count = 2**70  # past orjson's 64-bit integers
    assert json.loads(formatter.format(number))["count"] == 2**70


def test_the_log_leak_check_sees_an_email_sent_in_a_path(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The check the robustness tests share (conftest's logs_without_secrets) is not blind."""
    caplog.set_level(logging.DEBUG)
    app.before_request(lambda: logging.getLogger("planted").info("path %s", request.path))
    client.get("/users/Ana.Lima%40example.com/encounters")
    assert leaks_in(log_text(caplog.records)) == ["Ana.Lima@example.com"]


def test_gunicorn_gathers_no_access_line_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The app writes the access line; gunicorn's own is dropped, so it is not even gathered."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("JWT_SECRET", SECRET)
    config = runpy.run_path("gunicorn.conf.py")
    settings = gunicorn.config.Config()
    settings.set("logconfig_dict", config["logconfig_dict"])
    logger = object.__new__(config["logger_class"])  # without setup(): no logging reconfigured
    logger.cfg = settings
    gathered: list[object] = []
    monkeypatch.setattr(logger, "atoms", lambda *atoms: gathered.append(atoms), raising=False)

    logger.access(object(), object(), {"REQUEST_METHOD": "GET"}, datetime.timedelta(0))

    assert gathered == []


@dataclass
class AccessLines:
    """The access logger's lines, `logging_config`'s handler writing them to a string."""

    stream: io.StringIO
    handler: logging.Handler
    records: list[logging.LogRecord]  # the records that went through logging

    def alone(self) -> None:
        """The handler as the logger's only one: pytest adds its own to each test's loggers."""
        logging.getLogger(ACCESS_LOGGER).handlers[:] = [self.handler]


@pytest.fixture
def access_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[AccessLines]:
    """The access logger writing through `logging_config`'s handler and formatter alone."""
    from service.ops.logs import logging_config

    configurator = logging.config.DictConfigurator(logging_config())
    handler = logging.StreamHandler(stream := io.StringIO())
    handler.setFormatter(
        configurator.configure_formatter(configurator.config["formatters"]["json"])
    )
    handler.addFilter(
        configurator.configure_filter(configurator.config["filters"]["request_context"])
    )
    access = logging.getLogger(ACCESS_LOGGER)
    monkeypatch.setattr(access, "handlers", [handler])
    monkeypatch.setattr(access, "propagate", False)
    monkeypatch.setattr(access, "level", logging.INFO)
    access.manager._clear_cache()
    lines = AccessLines(stream, handler, [])
    make_record = access.makeRecord
    monkeypatch.setattr(
        access, "makeRecord", lambda *a, **k: _kept(lines.records, make_record(*a, **k))
    )
    yield lines
    access.manager._clear_cache()


def _kept(records: list[logging.LogRecord], record: logging.LogRecord) -> logging.LogRecord:
    records.append(record)
    return record


def _timeless(line: str) -> str:
    """The line less what differs from one request to the next: its time and duration."""
    line = re.sub(r'"duration_ms":[0-9.e-]+', '"duration_ms":0', line)
    return re.sub(r'"time":"[^"]*"', '"time":"T"', line)


def test_an_access_line_is_the_line_logging_would_write(
    client: FlaskClient, access_lines: AccessLines
) -> None:
    """Written straight to the handler when it is the only one, byte for byte logging's line."""
    access_lines.alone()
    client.get("/health/live", headers={"X-Request-ID": "straight-1"})
    assert access_lines.records == []
    # Another handler on the way (a test's, an operator's): then the record goes through logging.
    logging.getLogger(ACCESS_LOGGER).addHandler(logging.NullHandler())
    client.get("/health/live", headers={"X-Request-ID": "straight-1"})
    assert len(access_lines.records) == 1

    direct, through_logging = access_lines.stream.getvalue().splitlines()
    assert _timeless(direct) == _timeless(through_logging)
    fields = json.loads(direct)
    assert list(fields) == ["level", "logger", "message", "method", "route", "status",
                            "duration_ms", "request_id", "pid", "time"]  # fmt: skip
    assert fields["logger"] == ACCESS_LOGGER and fields["request_id"] == "straight-1"
    assert datetime.datetime.fromisoformat(fields["time"]).utcoffset() == datetime.timedelta(0)


def test_a_traced_access_line_carries_the_trace_as_logging_writes_it(
    app: Flask, access_lines: AccessLines
) -> None:
    """The fields of a traced request, in logging's order, through both ways of writing."""
    from flask import g

    from service.ops.logs import AccessLog

    access = AccessLog()
    access_lines.alone()
    with app.test_request_context("/"):
        g.request_id, g.trace_id, g.span_id = "traced-1", "a" * 32, "b" * 16
        access.write({"method": "GET", "route": "/r", "status": 200, "duration_ms": 1.5})
        access.logger.addFilter(passing := logging.Filter())  # a filter: logging's way too
        try:
            access.write({"method": "GET", "route": "/r", "status": 200, "duration_ms": 1.5})
        finally:
            access.logger.removeFilter(passing)
    assert len(access_lines.records) == 1
    direct, through_logging = access_lines.stream.getvalue().splitlines()
    assert _timeless(direct) == _timeless(through_logging)
    assert json.loads(direct)["trace_id"] == "a" * 32 and json.loads(direct)["span_id"] == "b" * 16


def test_the_access_logger_level_and_a_failing_stream_hold(
    client: FlaskClient,
    access_lines: AccessLines,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Above INFO there is no line; a stream that fails is logging's to report, not a 500."""
    access_lines.alone()
    access = logging.getLogger(ACCESS_LOGGER)
    monkeypatch.setattr(access, "level", logging.WARNING)
    access.manager._clear_cache()
    assert client.get("/health/live").status_code == 200
    assert access_lines.stream.getvalue() == ""

    monkeypatch.setattr(access, "level", logging.INFO)
    access.manager._clear_cache()
    monkeypatch.setattr(access_lines.stream, "write", _broken_write)
    assert client.get("/health/live").status_code == 200
    assert "--- Logging error ---" in capsys.readouterr().err
    assert access_lines.records[-1].getMessage() == "request"  # the report names its line


def _broken_write(_text: str) -> int:
    raise OSError("the stream is gone")
