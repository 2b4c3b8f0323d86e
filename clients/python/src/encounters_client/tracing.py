"""The caller's OpenTelemetry context as `traceparent`, when OpenTelemetry is there and active."""

from __future__ import annotations

import importlib
from collections.abc import Callable

Inject = Callable[[dict[str, str]], None]


def _opentelemetry_inject() -> Inject | None:
    """OpenTelemetry's global propagator (W3C Trace Context by default), if it is installed."""
    try:
        propagate = importlib.import_module("opentelemetry.propagate")
    except ImportError:  # the `tracing` extra is not installed: nothing to propagate
        return None
    inject: Inject = propagate.inject
    return inject


_INJECT = _opentelemetry_inject()


def trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span; none without an active span."""
    carrier: dict[str, str] = {}
    if _INJECT is not None:
        _INJECT(carrier)
    return carrier
