"""SPEC 10, tracing, in process: spans as the SDK's in-memory exporter receives them.

The provider is the one production builds (`tracer_provider`), every span passing the scrubber,
with the in-memory exporter in place of OTLP; the app turns tracing on from its config mapping.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service.app import create_app
from service.config import ConfigError, Settings
from service.ops.logs import ACCESS_LOGGER, RequestContext
from service.ops.trace_scrubbing import scrubbed
from service.ops.tracing import RESOLVER_SPAN, tracer_provider
from tests.database import backend_name
from tests.dataset import Dataset
from tests.leaks import leaks_in
from tests.tokens import SECRET, Tokens

ROUTE_SPAN = "GET /users/{userIdentifier}/encounters"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
EMAIL_PATH = "/users/Ana.Lima@example.com/encounters"


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """The exporter behind this process's provider (a provider can be set once per process)."""
    exporter = InMemorySpanExporter()
    provider = tracer_provider([exporter], batch=False)
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The exporter, emptied before the test; the SQL instrumentation undone after it."""
    span_exporter.clear()
    yield span_exporter
    span_exporter.clear()
    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def config(config: dict[str, Any], spans: InMemorySpanExporter) -> dict[str, Any]:
    """A deployment with tracing on."""
    return {**config, "OTEL_TRACES_EXPORTER": "otlp"}


def _one(found: list[ReadableSpan]) -> ReadableSpan:
    assert len(found) == 1, [span.name for span in found]
    return found[0]


def _server_span(spans: InMemorySpanExporter) -> ReadableSpan:
    return _one([s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER])


def _everything_said(span: ReadableSpan) -> str:
    """Every text a span exports: name, attributes, events, status, links."""
    parts = [span.name, str(span.status.description or "")]
    parts += [f"{key}={value}" for key, value in (span.attributes or {}).items()]
    for event in span.events:
        parts += [event.name, *(f"{k}={v}" for k, v in (event.attributes or {}).items())]
    parts += [f"{k}={v}" for link in span.links for k, v in (link.attributes or {}).items()]
    return "\n".join(parts)


def test_server_span_continues_the_callers_trace_with_resolver_and_sql_children(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, spans: InMemorySpanExporter
) -> None:
    headers = {"traceparent": TRACEPARENT, **tokens.header("ST-000123", "Student")}
    response = client.get(f"{EMAIL_PATH}?unit=3", headers=headers)
    assert response.status_code == 200

    server = _server_span(spans)
    assert server.name == ROUTE_SPAN
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/users/{userIdentifier}/encounters"
    assert server.context is not None and server.parent is not None
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert format(server.parent.span_id, "016x") == CALLER_SPAN
    assert server.parent.is_remote
    assert server.status.status_code is StatusCode.UNSET

    finished = spans.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in finished if s.context} == {CALLER_TRACE}
    resolver = _one([s for s in finished if s.name == RESOLVER_SPAN])
    assert resolver.parent is not None and resolver.parent.span_id == server.context.span_id
    assert resolver.attributes == {
        "encounters.resolver.identifiers": 2,
        "encounters.resolver.found": 2,
    }
    statements = [s for s in finished if s.attributes and "db.statement" in s.attributes]
    assert resolver.context is not None
    parents = {s.parent.span_id for s in statements if s.parent}
    # One statement resolves the users (inside the resolver's span), one lists the encounters;
    # on PostgreSQL the resolver's statement lists a student's encounters too.
    if backend_name() == "postgresql":
        assert len(statements) == 1 and parents == {resolver.context.span_id}
    else:
        assert parents == {resolver.context.span_id, server.context.span_id}
    assert all(s.kind is SpanKind.CLIENT for s in statements)
    for statement in statements:
        assert statement.name.split()[0] in ("SELECT", "WITH")
        text = str(statement.attributes["db.statement"])  # type: ignore[index]
        assert "ana.lima" not in text.lower() and "ST-000123" not in text


def test_a_request_without_traceparent_starts_a_trace(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, spans: InMemorySpanExporter
) -> None:
    assert client.get("/users/me/encounters", headers=tokens.header()).status_code == 200
    server = _server_span(spans)
    assert server.parent is None
    assert server.context is not None and format(server.context.trace_id, "032x") != CALLER_TRACE


@pytest.mark.parametrize(
    "path",
    [
        f"{EMAIL_PATH}?unit=3&starts=2026-01-01T00:00:00Z",
        "/users/Ana.Lima%40example.com/encounters?online=true",
        "/users/email:bruno@example.com/encounters",
        "/users/nobody@example.com/encounters",
        "/users/Ana.Lima@example.com",
        "/Ana.Lima@example.com/encounters?token=abc",
    ],
)
def test_no_span_carries_the_path_the_query_an_email_or_the_token(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    spans: InMemorySpanExporter,
    path: str,
) -> None:
    token = tokens.mint("Ana.Lima@example.com", "Student")
    client.get(path, headers={"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT})
    finished = spans.get_finished_spans()
    assert finished
    raw_path, _, query = path.partition("?")
    for span in finished:
        said = _everything_said(span)
        assert leaks_in(said, [token]) == []
        lowered = said.lower()
        assert "example.com" not in lowered and "nobody" not in lowered
        assert raw_path.lower() not in lowered
        identifiers = [
            part for part in raw_path.split("/") if part not in ("", "users", "encounters")
        ]
        assert [part for part in identifiers if part.lower() in lowered] == []
        assert not query or query not in said
        assert SECRET not in said
        for key in ("http.target", "http.url", "url.path", "url.query", "url.full"):
            assert key not in (span.attributes or {})


def test_an_unmatched_path_names_the_span_by_the_method_alone(
    client: FlaskClient, spans: InMemorySpanExporter
) -> None:
    assert client.get("/ana@example.com/encounters").status_code == 404
    server = _server_span(spans)
    assert server.name == "GET"
    assert "http.route" not in (server.attributes or {})


@pytest.mark.parametrize(
    ("path", "authorized", "status"),
    [
        ("/users/nobody@example.com/encounters", True, 404),
        ("/users/me/encounters", False, 401),
        ("/users/me/encounters?unit=x", True, 400),
    ],
)
def test_a_4xx_is_no_error(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    spans: InMemorySpanExporter,
    path: str,
    authorized: bool,
    status: int,
) -> None:
    headers = tokens.header() if authorized else {}
    assert client.get(path, headers=headers).status_code == status
    server = _server_span(spans)
    assert server.status.status_code is StatusCode.UNSET
    assert server.attributes is not None and server.attributes["http.status_code"] == status


def test_a_5xx_marks_the_server_span_and_the_resolver_span_as_errors(
    config: dict[str, Any], tokens: Tokens, spans: InMemorySpanExporter
) -> None:
    app = create_app({**config, "USER_RESOLVER": "tests.plugins.memory_directory:make_directory"})
    # TracedResolver → TimedResolver → the plug-in.
    app.extensions["encounters.resolver"].resolver.resolver.down = True
    response = app.test_client().get(
        "/users/zoe@elsewhere.example/encounters", headers=tokens.header("EXT-1", "Student")
    )
    assert response.status_code == 503

    server = _server_span(spans)
    assert server.status.status_code is StatusCode.ERROR
    resolver = _one([s for s in spans.get_finished_spans() if s.name == RESOLVER_SPAN])
    assert resolver.status.status_code is StatusCode.ERROR
    assert resolver.attributes is not None
    assert resolver.attributes["error.type"] == "DirectoryUnavailable"
    # The plug-in's message ("the directory is down") is its own text: not exported.
    assert "down" not in _everything_said(resolver)
    assert "zoe" not in "".join(_everything_said(s) for s in spans.get_finished_spans())


def test_probes_and_scrapes_make_no_span(client: FlaskClient, spans: InMemorySpanExporter) -> None:
    for path in ("/health/live", "/metrics"):
        assert client.get(path).status_code == 200
    assert spans.get_finished_spans() == ()


def test_log_lines_of_a_traced_request_carry_its_trace(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.handler.addFilter(RequestContext())
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        headers = {"traceparent": TRACEPARENT, **tokens.header()}
        assert client.get("/users/me/encounters", headers=headers).status_code == 200
    server = _server_span(spans)
    assert server.context is not None
    access = _one([r for r in caplog.records if r.name == ACCESS_LOGGER])  # type: ignore[arg-type]
    assert access.trace_id == CALLER_TRACE  # type: ignore[attr-defined]
    assert access.span_id == format(server.context.span_id, "016x")  # type: ignore[attr-defined]
    assert access.request_id  # type: ignore[attr-defined]


def test_without_otel_variables_the_app_loads_no_opentelemetry() -> None:
    # A process of its own: this one has loaded OpenTelemetry for the tests above.
    script = (
        "import sys; from service.app import create_app; "
        f"app = create_app({{'DATABASE_URL': 'sqlite://', 'JWT_SECRET': {SECRET!r}}}); "
        "assert not app.extensions['encounters.settings'].tracing; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


BASE = {"JWT_SECRET": SECRET}


@pytest.mark.parametrize(
    ("variables", "tracing"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "encounters", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "OTLP, console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, False),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            True,
        ),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, True),
    ],
)
def test_which_variables_turn_tracing_on(variables: dict[str, str], tracing: bool) -> None:
    assert Settings.from_mapping({**BASE, **variables}).tracing is tracing


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER must be otlp, console or none"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be http/protobuf",
        ),
    ],
)
def test_tracing_settings_that_cannot_work_are_refused(
    variables: dict[str, str], reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason):
        Settings.from_mapping({**BASE, **variables})


def test_the_scrubber_masks_what_any_attribute_event_or_status_carries(tokens: Tokens) -> None:
    token = tokens.mint()
    tracer = TracerProvider().get_tracer("test")
    span = tracer.start_span("look up zoe@elsewhere.example", kind=SpanKind.INTERNAL)
    span.set_attributes(
        {
            "url.path": "/users/zoe@elsewhere.example/encounters",
            "url.query": "unit=3",
            "http.request.header.authorization": (f"Bearer {token}",),
            "note": "for Zoe%40elsewhere.example",
            "hosts": ("postgresql://app:hunter2@db:5432/x", "plain"),
            "count": 3,
        }
    )
    span.add_event("exception", {"exception.message": f"bad token {token}"})
    span.set_status(StatusCode.ERROR, "no user zoe@elsewhere.example")
    span.end()
    assert isinstance(span, ReadableSpan)

    clean = scrubbed(span)
    said = _everything_said(clean)
    assert leaks_in(said, [token]) == [] and "elsewhere" not in said and "hunter2" not in said
    assert clean.attributes == {
        "note": "for [email]",
        "hosts": ("postgresql://app:***@db:5432/x", "plain"),
        "count": 3,
    }
    assert clean.name == "look up [email]"
    assert clean.status.description == "no user [email]"
    assert clean.events[0].attributes == {"exception.message": "bad token [token]"}


def test_statements_on_a_read_replica_are_spans_too(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens, spans: InMemorySpanExporter
) -> None:
    # The same database stands in for the replica (no standby, hence no bound): reads go there,
    # and are traced, as is the worker's look at the replica on PostgreSQL (service.routing).
    app = create_app(
        {
            **config,
            "DATABASE_REPLICA_URL": config["DATABASE_URL"],
            "DATABASE_REPLICA_MAX_LAG_SECONDS": "off",
        }
    )
    response = app.test_client().get("/users/me/encounters", headers=tokens.header())
    assert response.status_code == 200
    statements = [
        s.attributes["db.statement"]
        for s in spans.get_finished_spans()
        if "db.statement" in (s.attributes or {})
    ]
    looks = [s for s in statements if "pg_is_in_recovery()" in str(s)]
    # A student's list: in the resolver's statement on PostgreSQL (one), else two.
    assert len(statements) - len(looks) == (1 if backend_name() == "postgresql" else 2)
    assert len(looks) == (1 if backend_name() == "postgresql" else 0)
