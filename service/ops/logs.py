"""Logs: one JSON object a line, with the request id, and nothing secret or personal in it."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from datetime import UTC, datetime
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

    @functools.cached_property
    def writes_fields_alone(self) -> bool:
        """Whether a line holds only the level, logger, message, extra fields and time (`line`)."""
        standard = {"levelname", "name", "message"}
        return (
            set(self._required_fields) <= standard
            and not self.defaults
            and not self.static_fields
            and not self.rename_fields_keep_missing
        )

    def line(
        self, level: str, logger: str, message: str, fields: dict[str, Any], created: float
    ) -> str:
        """The line `format` writes for a record of these (`writes_fields_alone`), without one."""
        standard = {"levelname": level, "name": logger, "message": message}
        rename = self._get_rename
        log_data: LogData = {rename(name): standard[name] for name in self._required_fields}
        for name, value in fields.items():
            log_data[rename(name)] = value
        if self.timestamp:
            key = self.timestamp if isinstance(self.timestamp, str) else "timestamp"
            log_data[rename(key)] = datetime.fromtimestamp(created, tz=UTC)
        return self.serialize_log_record(self.process_log_record(log_data))

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
    # Each pattern needs one of these: a text with none (an access line) skips the four scans.
    # (Five substring tests: a fifth of the time of one case-blind regular expression.)
    if not (
        "@" in text or "%40" in text or "eyJ" in text or "://" in text or "bearer" in text.lower()
    ):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RequestContext(logging.Filter):
    """Adds the request id and trace (when there are) and the process id to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops one."""
        record.__dict__.update(context_fields(record.process))
        return True


def context_fields(pid: int | None) -> dict[str, Any]:
    """What every line carries: the request id and trace (when there are), and the process id."""
    fields: dict[str, Any] = {}
    known = vars(g._get_current_object()) if has_request_context() else {}  # one lookup of `g`
    if "request_id" in known:
        fields["request_id"] = known["request_id"]
        # Set by service.ops.tracing when this request is traced.
        if "trace_id" in known:
            fields["trace_id"] = known["trace_id"]
            fields["span_id"] = known["span_id"]
    fields["pid"] = pid
    return fields


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


class AccessLog:
    """The access logger's line, written by the shortest way to the same bytes.

    logging's way (a record and its caller's frame, the filter, python-json-logger's scan of the
    record's attributes) cost 100 µs of a worker's CPU a request under load, a tenth of a
    20-item request: more than the statement. When the access logger's lines go to one handler
    alone, `logging_config`'s (the JSON formatter on stderr, the request's fields added), the line
    is built from the fields and written through that handler (its lock, stream and flush). Any
    other setup (another handler, a filter, a formatter of other fields) gets the record.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)

    def write(self, fields: dict[str, Any]) -> None:
        """Log `request` with these fields, at INFO."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = _sole_json_handler(logger)
        if handler is None:
            logger.info("request", extra=fields)
            return
        formatter: RedactingJsonFormatter = handler.formatter  # type: ignore[assignment]
        fields.update(context_fields(os.getpid()))
        line = formatter.line("INFO", ACCESS_LOGGER, "request", fields, time.time())
        handler.acquire()
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except RecursionError:  # as logging's own emit
            raise
        except Exception:  # a stream that fails: logging's report of it, as for any line
            record = logger.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, "request", (), None)
            handler.handleError(record)
        finally:
            handler.release()


def _sole_json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler the logger's INFO lines reach when it is `logging_config`'s, else None."""
    if logger.filters:
        return None
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found += current.handlers
        current = current.parent if current.propagate else None
    if len(found) != 1:
        return None
    handler = found[0]
    formatter = handler.formatter
    if (
        type(handler) is logging.StreamHandler
        and handler.level <= logging.INFO
        and type(formatter) is RedactingJsonFormatter
        and formatter.writes_fields_alone
        and [type(f) for f in handler.filters] == [RequestContext]
    ):
        return handler
    return None


def init_access_log(app: Flask) -> None:
    """Log one JSON line per request: id, method, route, status and duration."""
    access = AccessLog()

    @app.after_request
    def log_access(response: Response) -> Response:
        access.write(
            {
                "method": request.method,
                "route": route_template(),
                "status": response.status_code,
                "duration_ms": round(request_seconds() * 1000, 3),
            }
        )
        return response
