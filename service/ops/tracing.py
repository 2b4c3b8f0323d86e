"""OpenTelemetry traces: a server span per request, resolver and SQL child spans, nothing personal.

Imported only when `Settings.tracing` is on (docs/tracing.md): by gunicorn's master, so that every
worker inherits the loaded modules, and by the app factory. With tracing off nothing here is
imported and no hook is installed. Each worker starts its own provider and exporter after fork
(`start_tracing`) and flushes them on a graceful exit (`stop_tracing`).

Every span passes through `ScrubbingSpanProcessor` (service/ops/trace_scrubbing.py) before any
exporter sees it: the identifier in the path may be an email.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from flask import Flask, g
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import Engine

from service.db import db
from service.directory import DirectoryUser, Listed, UserResolver, resolve_listing
from service.identifiers import UserIdentifier
from service.ops.trace_scrubbing import ScrubbingSpanProcessor

DEFAULT_SERVICE_NAME = "encounters"
# Probes and scrapes every few seconds would bury the requests worth reading.
DEFAULT_EXCLUDED_URLS = "/health/live$,/health/ready$,/metrics$"
RESOLVER_SPAN = "resolve users"


def tracer_provider(exporters: Sequence[SpanExporter], batch: bool = True) -> TracerProvider:
    """A provider whose spans reach each exporter scrubbed (in batches, or one by one)."""
    # TracerProvider reads OTEL_TRACES_SAMPLER(_ARG) and the span limits; the batch processor
    # reads OTEL_BSP_*.
    provider = TracerProvider(resource=_resource())
    for exporter in exporters:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(ScrubbingSpanProcessor(processor))
    return provider


def _resource() -> Resource:
    # OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then ours rather than "unknown_service".
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        return detected.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return detected


def configured_exporters() -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names (`otlp` if unset); OTLP reads its own variables."""
    names = os.environ.get("OTEL_TRACES_EXPORTER") or "otlp"
    chosen = {name.strip().lower() for name in names.split(",")}
    exporters: list[SpanExporter] = []
    if "otlp" in chosen:
        exporters.append(OTLPSpanExporter())
    if "console" in chosen:
        exporters.append(ConsoleSpanExporter())
    return exporters


def start_tracing() -> TracerProvider:
    """Start this process's provider and exporters: in each gunicorn worker, after fork."""
    provider = tracer_provider(configured_exporters())
    trace.set_tracer_provider(provider)
    return provider


def stop_tracing() -> None:
    """Export what is still buffered and stop the exporters (a worker's graceful exit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def init_tracing(app: Flask) -> None:
    """Trace the app's requests, its resolver calls and its SQL, with the process's provider."""
    excluded = (
        os.environ.get("OTEL_PYTHON_FLASK_EXCLUDED_URLS")
        or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
        or DEFAULT_EXCLUDED_URLS
    )
    # The commenter would attach a context per request and never detach it; SQL comments are
    # not wanted anyway (they would defeat the statement cache of a pooler).
    FlaskInstrumentor.instrument_app(app, excluded_urls=excluded, enable_commenter=False)
    app.before_request(_remember_trace)
    app.extensions["encounters.resolver"] = TracedResolver(app.extensions["encounters.resolver"])
    db.on_new_engines(app, trace_engines)


def _remember_trace() -> None:
    # Runs after the instrumentation's own before_request: the server span is current.
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        g.trace_id = format(context.trace_id, "032x")
        g.span_id = format(context.span_id, "016x")


def trace_engines(engines: list[Engine]) -> None:
    """A span for every statement the engines run: its text with placeholders, never parameters."""
    instrumentor = SQLAlchemyInstrumentor()
    # The instrumentor is one per process and traces the engines of its first call only; a
    # worker makes its engines once, a test process once per app: the newest are traced.
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    # It declares sqlalchemy<2.1 and refuses to instrument 2.1 unless told not to check: the
    # cursor events it listens to are unchanged in 2.1, and the tests check its spans.
    instrumentor.instrument(engines=engines, skip_dep_check=True, enable_commenter=False)


class TracedResolver:
    """A resolver whose every call is a child span: how many identifiers, how many found."""

    def __init__(self, resolver: UserResolver) -> None:
        self.resolver = resolver
        self.tracer = trace.get_tracer(__name__)

    def resolve(self, identifiers: Sequence[UserIdentifier]) -> list[DirectoryUser | None]:
        """The wrapped resolver's answer, in a span that names no identifier."""
        return self.resolve_listing(identifiers, None)[0]

    def resolve_listing(self, identifiers: Sequence[UserIdentifier], listing: Any) -> Listed:
        """The same, when the list may be read along (`service.directory.resolve_listing`)."""
        with self.tracer.start_as_current_span(
            RESOLVER_SPAN,
            attributes={"encounters.resolver.identifiers": len(identifiers)},
            # An exception's message is the plug-in's text: only its type is recorded.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                listed = resolve_listing(self.resolver, identifiers, listing)
            except Exception as error:
                span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(Status(StatusCode.ERROR))
                raise
            span.set_attribute("encounters.resolver.found", sum(u is not None for u in listed[0]))
            return listed
