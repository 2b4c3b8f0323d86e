"""RFC 9457 problem details for every error (werkzeug's and unexpected ones too), documented."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from service.encounters import InvalidQuery
from service.identifiers import InvalidIdentifier
from service.jwks import KeySetUnavailable
from service.representations import NOT_ACCEPTABLE_DETAIL
from service.routing import ReplicaUnavailable
from service.tokens import Unauthenticated

PROBLEM_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5
INVALID_PARAMETERS_DETAIL = "The request's parameters are invalid."
INVALID_IDENTIFIER_DETAIL = "The user identifier is malformed."
FORBIDDEN_DETAIL = "Only a known Student or StaffMember may call this."
NOT_FOUND_DETAIL = "No user with that identifier is visible to you."
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


@dataclass(frozen=True)
class ProblemResponse:
    """A documented problem-details response, with an example made as the service makes it."""

    status: int
    description: str
    detail: str
    errors: dict[str, list[str]] | None = None
    headers: dict[str, dict[str, Any]] | None = None

    def component(self) -> dict[str, Any]:
        """The OpenAPI response object."""
        example = problem_body(self.status, self.detail, self.errors, _EXAMPLE_REQUEST_ID)
        content = {PROBLEM_TYPE: {"schema": ProblemSchema, "example": example}}
        headers = {"headers": self.headers} if self.headers else {}
        return {"description": self.description, **headers, "content": content}


_EXAMPLE_REQUEST_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
_CHALLENGE = {
    "schema": {"type": "string"},
    "description": 'RFC 6750 challenge; with error="invalid_token" when a token failed.',
}
_SECONDS = {"schema": {"type": "integer"}, "description": "Seconds."}
# Named OpenAPI components, registered once (as flask-smorest registers its default responses);
# a view documents a status with `blp.alt_response(status, name)`.
PROBLEM_RESPONSES = {
    "InvalidParameters": ProblemResponse(
        400,
        "Malformed identifier or query parameter.",
        INVALID_PARAMETERS_DETAIL,
        errors={"unit": ["Not a valid integer."]},
    ),
    "Unauthenticated": ProblemResponse(
        401,
        "No token, or one that fails verification.",
        "the token has expired",
        headers={"WWW-Authenticate": _CHALLENGE},
    ),
    "Forbidden": ProblemResponse(403, "The caller is no Student or StaffMember.", FORBIDDEN_DETAIL),
    "NotFound": ProblemResponse(
        404, "No such user, or one the caller may not see.", NOT_FOUND_DETAIL
    ),
    "NotAcceptable": ProblemResponse(
        406, "Accept admits neither JSON type.", NOT_ACCEPTABLE_DETAIL
    ),
    "Unavailable": ProblemResponse(
        503,
        "Database or directory unavailable.",
        UNAVAILABLE_DETAIL,
        headers={"Retry-After": _SECONDS},
    ),
}


class Api(flask_smorest.Api):
    """flask-smorest's Api, answering every HTTP error as problem details."""

    ERROR_SCHEMA = ProblemSchema
    # No catch-all "default" response: each operation lists every status it can answer, so the
    # document is exact (and flask-smorest would point "default" at a component it never adds).
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_responses(self) -> None:
        """flask-smorest's named responses, and the problem responses beside them."""
        super()._register_responses()
        for name, response in PROBLEM_RESPONSES.items():
            self.spec.components.response(name, response.component(), lazy=True)

    def _register_pagination_header(self) -> None:
        """Nothing: the service paginates nothing, so its document names no pagination schema."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Turn werkzeug's and flask-smorest's HTTP errors into problem details."""
        status = error.code or 500
        headers = {
            name: value for name, value in error.get_headers() if name.lower() != "content-type"
        }
        data: dict[str, Any] = getattr(error, "data", None) or {}
        headers.update(data.get("headers") or {})
        errors = _location_errors(data["messages"]) if "messages" in data else data.get("errors")
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
    @app.errorhandler(InvalidQuery)
    def invalid_parameters(error: InvalidIdentifier | InvalidQuery) -> Response:
        if isinstance(error, InvalidIdentifier):
            return problem(400, INVALID_IDENTIFIER_DETAIL, errors=error.errors)
        return problem(400, INVALID_PARAMETERS_DETAIL, errors=error.errors)

    # OperationalError covers a read replica's recovery conflicts too: psycopg's
    # SerializationFailure (40001, "canceling statement due to conflict with recovery") and
    # DeadlockDetected (40P01) are OperationalErrors, and so is a connection it terminated.
    @app.errorhandler(DirectoryUnavailable)
    @app.errorhandler(KeySetUnavailable)
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(ReplicaUnavailable)
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


def flatten_messages(messages: Any, path: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested messages as (`Key[index].Field`, message) pairs; "" for the whole."""
    if isinstance(messages, dict):
        pairs: list[tuple[str, str]] = []
        for key, value in messages.items():
            if key == "_schema":
                inner = path
            elif isinstance(key, int):
                inner = f"{path}[{key}]"
            else:
                inner = f"{path}.{key}" if path else str(key)
            pairs += flatten_messages(value, inner)
        return pairs
    if isinstance(messages, list):
        return [pair for message in messages for pair in flatten_messages(message, path)]
    return [(path, str(messages))]


def field_errors(messages: Any) -> dict[str, list[str]]:
    """marshmallow's {field: [messages]} (nested, maybe) as {field: [messages]}."""
    errors: dict[str, list[str]] = {}
    for name, text in flatten_messages(messages):
        errors.setdefault(name, []).append(text)
    return errors


def _location_errors(messages: Any) -> dict[str, list[str]]:
    """webargs' {location: {field: [messages]}} as {field: [messages]}."""
    return field_errors(list((messages or {}).values()))
