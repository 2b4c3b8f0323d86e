"""SPEC 10, tracing, end to end: gunicorn exports real OTLP/HTTP to a receiver on 127.0.0.1.

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set. The batch processor's timer is
set beyond the test's length, so the spans arrive only through the flush of a graceful stop.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.database import backend_name, database_with_dataset
from tests.leaks import leaks_in
from tests.live import Gunicorn, OtlpReceiver, fetch, refused_port
from tests.tokens import SECRET, Tokens

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
EMAIL = "Ana.Lima@example.com"
EMAIL_PATH = f"/users/{EMAIL}/encounters"
ROUTE_SPAN = "GET /users/{userIdentifier}/encounters"


@dataclass(frozen=True)
class Exported:
    """One span as the receiver decoded it."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    status: int
    attributes: dict[str, Any]
    service: str


def _values(attributes: Any) -> dict[str, Any]:
    pairs: list[KeyValue] = list(attributes)
    return {p.key: getattr(p.value, p.value.WhichOneof("value") or "string_value") for p in pairs}


def _exported(receiver: OtlpReceiver) -> list[Exported]:
    found = []
    for request in receiver.requests:
        for resource_spans in request.resource_spans:
            service = _values(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                found += [
                    Exported(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.name,
                        span.kind,
                        span.status.code,
                        _values(span.attributes),
                        service,
                    )
                    for span in scope_spans.spans
                ]
    return found


def _server(
    environment: dict[str, str], receiver: OtlpReceiver, log: Path, bsp_delay: str = "600000"
) -> Gunicorn:
    return Gunicorn(
        {
            "JWT_SECRET": SECRET,
            "WEB_CONCURRENCY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": "encounters-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": bsp_delay,
            **environment,
        },
        log,
    ).start()


def test_a_traced_request_under_gunicorn_reaches_the_collector_scrubbed(
    migrated_template: str, tmp_path: Path, tokens: Tokens
) -> None:
    receiver = OtlpReceiver().start()
    token = tokens.mint(EMAIL, "Student")
    caller = {
        "Authorization": f"Bearer {token}",
        "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
    }
    url = database_with_dataset(migrated_template, tmp_path)
    server = _server({"DATABASE_URL": url}, receiver, tmp_path / "server.log")
    try:
        assert fetch(f"{server.url}{EMAIL_PATH}?unit=3", caller).status == 200
        assert fetch(f"{server.url}/users/nobody@example.com/encounters", caller).status == 404
        assert receiver.requests == []  # nothing before the flush: the timer is far away
    finally:
        assert server.stop() == 0
    # A database that refuses connections: 503.
    with refused_port() as port:
        unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere"
        down = _server({"DATABASE_URL": unreachable}, receiver, tmp_path / "down.log")
        try:
            assert fetch(f"{down.url}{EMAIL_PATH}", caller).status == 503
        finally:
            assert down.stop() == 0
            receiver.stop()

    spans = _exported(receiver)
    assert {span.service for span in spans} == {"encounters-under-test"}
    servers = [span for span in spans if span.kind == Span.SPAN_KIND_SERVER]
    assert [span.name for span in servers] == [ROUTE_SPAN] * 3
    ok, missing, unavailable = servers
    # The caller's trace continued, its span the parent of each server span.
    assert {span.trace_id for span in spans} == {CALLER_TRACE}
    assert {span.parent_id for span in servers} == {CALLER_SPAN}
    assert [s.attributes["http.status_code"] for s in servers] == [200, 404, 503]
    assert [s.status for s in servers] == [
        Status.STATUS_CODE_UNSET,
        Status.STATUS_CODE_UNSET,
        Status.STATUS_CODE_ERROR,
    ]

    # The tree of the 200: server → resolver → SQL, and server → SQL (on PostgreSQL the
    # resolver's statement reads a student's list too: no statement of the server span's own).
    children = [span for span in spans if span.parent_id == ok.span_id]
    resolver = next(span for span in children if span.name == "resolve users")
    statements = [span for span in spans if "db.statement" in span.attributes]
    ours = [span for span in statements if span.parent_id in (ok.span_id, resolver.span_id)]
    if backend_name() == "postgresql":
        assert [span.parent_id for span in ours] == [resolver.span_id]
    else:
        assert {span.parent_id for span in ours} == {ok.span_id, resolver.span_id}
    assert all(span.kind == Span.SPAN_KIND_CLIENT for span in statements)
    assert all(span.name.startswith(("SELECT", "WITH")) for span in ours)

    # No email, token, raw path or parameter anywhere in what was exported.
    exported = "\n".join(text_format.MessageToString(r) for r in receiver.requests)
    assert leaks_in(exported, [token]) == []
    lowered = exported.lower()
    for raw in (EMAIL, EMAIL.replace("@", "%40"), EMAIL_PATH, "nobody@example.com", "unit=3"):
        assert raw.lower() not in lowered
    assert token[-32:] not in exported

    # The log lines of the traced request carry its trace and the server span.
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    traced = [line for line in lines if line.get("trace_id") == CALLER_TRACE]
    assert {(line["logger"], line["span_id"]) for line in traced} >= {
        ("encounters.access", ok.span_id),
        ("encounters.access", missing.span_id),
    }
    assert all(line["request_id"] for line in traced)
    down_lines = [json.loads(line) for line in down.log_lines() if line.startswith("{")]
    assert any(line.get("span_id") == unavailable.span_id for line in down_lines)


def test_without_otel_variables_gunicorn_exports_nothing(
    migrated_template: str, tmp_path: Path, tokens: Tokens
) -> None:
    url = database_with_dataset(migrated_template, tmp_path)
    server = Gunicorn({"DATABASE_URL": url, "JWT_SECRET": SECRET, "WEB_CONCURRENCY": "1"},
                      tmp_path / "server.log").start()  # fmt: skip
    try:
        headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", **tokens.header()}
        assert fetch(f"{server.url}/users/me/encounters", headers).status == 200
    finally:
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    assert lines and not any("trace_id" in line for line in lines)


def test_a_collector_that_is_down_costs_no_answer_and_no_slow_stop(
    migrated_template: str, tmp_path: Path, tokens: Tokens
) -> None:
    url = database_with_dataset(migrated_template, tmp_path)
    nobody = OtlpReceiver()  # its port, never listened on
    server = _server(
        {"DATABASE_URL": url, "OTEL_EXPORTER_OTLP_TIMEOUT": "1"},
        nobody,
        tmp_path / "server.log",
        bsp_delay="50",
    )
    try:
        for _ in range(5):
            assert fetch(f"{server.url}/users/me/encounters", tokens.header()).status == 200
            time.sleep(0.1)
    finally:
        started = time.monotonic()
        assert server.stop() == 0
    assert time.monotonic() - started < 15
