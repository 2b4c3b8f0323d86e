"""RFC 9457 problem details for every error, werkzeug's and unexpected ones included."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, NoReturn

import flask_smorest
from flask import Flask, g, json
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug import Response
from werkzeug.exceptions import HTTPException

from schemas.problems import ProblemSchema
from service.directory import DirectoryUnavailable
from service.identifiers import InvalidIdentifier
from service.jwks import KeySetUnavailable
from service.tokens import Unauthenticated

PROBLEM_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5
INVALID_PARAMETERS_DETAIL = "The request's parameters are invalid."
UNAVAILABLE_DETAIL = "The service's data is unreachable right now; try again shortly."
log = logging.getLogger(__name__)


def problem_body(
    status: int, detail: str, errors: dict[str, list[str]] | None, request_id: str
) -> dict[str, Any]:
    """The problem-details body of a status (the OpenAPI examples are made by it too)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body["request_id"] = request_id
    return body


def problem(
    status: int,
    detail: str,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem-details response; the only way an error response is made."""
    body = problem_body(status, detail, errors, g.get("request_id", ""))
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    response.headers.update(headers or {})
    return response


def abort(
    status: int, detail: str | None = None, errors: dict[str, list[str]] | None = None
) -> NoReturn:
    """Stop the request with a problem-details error (`errors` per field, for a 400)."""
    data: dict[str, Any] = {"errors": errors} if errors else {}
    if detail is not None:
        data["message"] = detail
    flask_smorest.abort(status, **data)
    raise AssertionError("unreachable")  # flask_smorest.abort always raises


class Api(flask_smorest.Api):
    """flask-smorest's Api, answering every HTTP error as problem details."""

    ERROR_SCHEMA = ProblemSchema
    # No catch-all "default" response: each operation lists every status it can answer, so the
    # document is exact (and flask-smorest would point "default" at a component it never adds).
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Turn werkzeug's and flask-smorest's HTTP errors into problem details."""
        status = error.code or 500
        headers = {
            name: value for name, value in error.get_headers() if name.lower() != "content-type"
        }
        data: dict[str, Any] = getattr(error, "data", None) or {}
        headers.update(data.get("headers") or {})
        errors = _flatten(data.get("messages")) if "messages" in data else data.get("errors")
        if status == 400 and errors:
            detail = INVALID_PARAMETERS_DETAIL
        else:
            detail = data.get("message") or error.description or HTTPStatus(status).description
        return problem(status, detail, errors=errors, headers=headers)


def register_error_handlers(app: Flask) -> None:
    """Map the service's own exceptions (and any other) to their problem details."""

    @app.errorhandler(Unauthenticated)
    def unauthenticated(error: Unauthenticated) -> Response:
        detail = error.description or "A bearer token is required."
        return problem(401, detail, headers={"WWW-Authenticate": error.challenge})

    @app.errorhandler(InvalidIdentifier)
    def invalid_identifier(error: InvalidIdentifier) -> Response:
        return problem(
            400, "The user identifier is malformed.", errors={"userIdentifier": [str(error)]}
        )

    # OperationalError covers a read replica's recovery conflicts too: psycopg's
    # SerializationFailure (40001, "canceling statement due to conflict with recovery") and
    # DeadlockDetected (40P01) are OperationalErrors, and so is a connection it terminated.
    @app.errorhandler(DirectoryUnavailable)
    @app.errorhandler(KeySetUnavailable)
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def unavailable(error: Exception) -> Response:
        log.warning("dependency unavailable: %s", type(error).__name__)
        return problem(
            503,
            UNAVAILABLE_DETAIL,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error")
        return problem(500, "The server could not answer; the error is logged.")


def _flatten(messages: Any) -> dict[str, list[str]]:
    """webargs' {location: {field: [messages]}} as {field: [messages]}."""
    flat: dict[str, list[str]] = {}
    for fields in (messages or {}).values():
        for name, problems in (fields or {}).items():
            flat[str(name)] = (
                [str(p) for p in problems] if isinstance(problems, list) else [str(problems)]
            )
    return flat
