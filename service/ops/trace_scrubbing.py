"""What of a span may leave the process: no raw path, query, email or token (docs/tracing.md).

The identifier is in the path, and it may be an email. The Flask and WSGI instrumentations set the
raw target after every hook has run, and an ended span is read-only: a processor that hands on a
scrubbed copy is the only place to drop it (the issue's finding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, Status
from opentelemetry.util.types import AttributeValue

from service.ops.logs import redact, rule_template

# The raw target in every semantic-conventions spelling (the path holds the identifier, an email
# maybe), and the headers that carry a token if an operator asks for request headers.
DROPPED_ATTRIBUTES = frozenset(
    {
        "http.target",
        "http.url",
        "url.path",
        "url.query",
        "url.full",
        "http.request.header.authorization",
        "http.request.header.cookie",
    }
)
_ROUTE = "http.route"
_METHODS = ("http.request.method", "http.method")


class ScrubbingSpanProcessor(SpanProcessor):
    """Hands `processor` each ended span without the raw path, query, emails or tokens."""

    def __init__(self, processor: SpanProcessor) -> None:
        self.processor = processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Pass the started span on unchanged (nothing is exported before it ends)."""
        self.processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Pass on a scrubbed copy of the ended span."""
        self.processor.on_end(scrubbed(span))

    def shutdown(self) -> None:
        """Shut the wrapped processor down (a batch processor exports what it holds)."""
        self.processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped processor."""
        return self.processor.force_flush(timeout_millis)


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` fit to leave the process; a server span is named by its route template."""
    attributes = _clean(span.attributes)
    name = redact(span.name)
    if span.kind is SpanKind.SERVER:
        method = next((str(attributes[key]) for key in _METHODS if key in attributes), "HTTP")
        route = attributes.get(_ROUTE)
        # No route (a 404 of the router): the method alone, as the semantic conventions say.
        name = f"{method} {route}" if route else method
    description = span.status.description
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=[Event(e.name, _clean(e.attributes), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code, redact(description) if description else None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _clean(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    clean: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if key in DROPPED_ATTRIBUTES:
            continue
        if key == _ROUTE and isinstance(value, str):
            clean[key] = rule_template(value)
        elif isinstance(value, str):
            clean[key] = redact(value)
        elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            clean[key] = tuple(redact(str(item)) for item in value)
        else:
            clean[key] = value
    return clean
