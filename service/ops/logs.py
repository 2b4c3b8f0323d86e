"""Logs: one JSON object a line, with the request id, and nothing secret or personal in it."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from typing import Any

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.core import LogData
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.orjson import OrjsonFormatter
from werkzeug import Response

ACCESS_LOGGER = "encounters.access"
UNMATCHED_ROUTE = "<unmatched>"
_SECRET_VARIABLES = ("JWT_SECRET", "DATABASE_URL")
# Whatever a message carries, these never reach a line: a log is read by more people than the data.
_REDACTIONS = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"\\,]+"), r"\1 [redacted]"),
    (re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*"), "[token]"),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s\"\\]*:)[^@/\s\"\\]+@", re.IGNORECASE), r"\1***@"),
    (re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+"), "[email]"),
)


_MARKERS = ("eyJ", "://", "@", "%40")


class RedactingJsonFormatter(OrjsonFormatter):
    """python-json-logger's formatter, masking tokens, emails, URL passwords and the secrets.

    Its orjson variant: two thirds of the CPU of the `json` one for an access line. orjson writes
    non-ASCII text as it is: such a line (and one orjson cannot write) is written by the `json`
    variant's encoder instead, with `\\u` escapes, so that a stream in any encoding gets JSON.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "time")
        super().__init__(*args, **kwargs)
        secrets = (os.environ.get(name) for name in _SECRET_VARIABLES)
        # A secret is matched as it appears inside a JSON string, escapes included.
        self._secrets = sorted(
            {json.dumps(s)[1:-1] for s in secrets if s and len(s) >= 8}, key=len, reverse=True
        )

    def jsonify_log_record(self, log_data: LogData) -> str:
        """The record as one line of compact JSON, ASCII only."""
        try:
            line = super().jsonify_log_record(log_data)
        except TypeError:  # what orjson cannot write (an integer over 64 bits): json can
            line = None
        if line is None or not line.isascii():
            line = json.dumps(log_data, cls=JsonEncoder, separators=(",", ":"))
        return line

    def serialize_log_record(self, log_data: dict[str, Any]) -> str:
        """The JSON line, with everything sensitive masked."""
        line = super().serialize_log_record(log_data)
        for secret in self._secrets:
            line = line.replace(secret, "[secret]")
        return redact(line)


def redact(text: str) -> str:
    """`text` with bearer tokens, JWTs, passwords in URLs and emails masked."""
    # Each pattern needs one of these: a line with none (an access line) skips the four scans.
    if not any(marker in text for marker in _MARKERS) and "bearer" not in text.lower():
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RequestContext(logging.Filter):
    """Adds the request id and trace (when there are) and the process id to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops one."""
        if has_request_context() and "request_id" in g:
            record.request_id = g.request_id
            # Set by service.ops.tracing when this request is traced.
            if "trace_id" in g:
                record.trace_id = g.trace_id
                record.span_id = g.span_id
        record.pid = record.process
        return True


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` (and gunicorn `logconfig_dict`) for JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": RequestContext}},
        "formatters": {
            "json": {
                "()": RedactingJsonFormatter,
                "fmt": "{levelname}{name}{message}",
                "style": "{",
                "rename_fields": {"levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["request_context"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            # Alembic announces its plugins at INFO whenever it is imported: noise in a server.
            "alembic": {"level": "WARNING"},
            # gunicorn's access line has the raw path (an email, maybe): the app logs its own.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def route_template() -> str:
    """The matched route as OpenAPI writes it, `/users/{userIdentifier}/encounters`: no raw path."""
    rule = request.url_rule
    if rule is None:
        return UNMATCHED_ROUTE
    return rule_template(rule.rule)


@functools.lru_cache(maxsize=256)
def rule_template(rule: str) -> str:
    """A Flask rule in OpenAPI spelling: `<identifier:userIdentifier>` is `{userIdentifier}`."""
    # Cached: once per route, not twice per request (metrics and the access log both ask).
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def request_seconds() -> float:
    """Seconds since the current request started."""
    started: float = g.get("request_started", time.perf_counter())
    return time.perf_counter() - started


def init_access_log(app: Flask) -> None:
    """Log one JSON line per request: id, method, route, status and duration."""
    access = logging.getLogger(ACCESS_LOGGER)

    @app.after_request
    def log_access(response: Response) -> Response:
        access.info(
            "request",
            extra={
                "method": request.method,
                "route": route_template(),
                "status": response.status_code,
                "duration_ms": round(request_seconds() * 1000, 3),
            },
        )
        return response
