"""The service's problem details (RFC 9457) as exceptions, one class a documented status."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, ClassVar

import httpx


class EncountersError(Exception):
    """An answer other than the list: any status, with the problem details the service sent."""

    STATUS: ClassVar[int | None] = None

    def __init__(self, status: int, title: str, detail: str, request_id: str) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.request_id = request_id
        """The service's X-Request-ID of the answer: quote it when asking its operators."""


class InvalidParameters(EncountersError):
    """400: a malformed identifier or query parameter; `errors` says which and why."""

    STATUS = 400

    def __init__(
        self, status: int, title: str, detail: str, request_id: str, errors: dict[str, list[str]]
    ) -> None:
        super().__init__(status, title, detail, request_id)
        self.errors = errors


class Unauthenticated(EncountersError):
    """401: no token, or one that fails verification."""

    STATUS = 401


class Forbidden(EncountersError):
    """403: the caller is no known Student or StaffMember."""

    STATUS = 403


class NotFound(EncountersError):
    """404: no such user, or one the caller may not see (the service does not say which)."""

    STATUS = 404


class NotAcceptable(EncountersError):
    """406: the Accept header admits neither JSON type."""

    STATUS = 406


class Unavailable(EncountersError):
    """503: the service's data is unreachable for now; `retry_after` seconds, when it said."""

    STATUS = 503

    def __init__(
        self, status: int, title: str, detail: str, request_id: str, retry_after: float | None
    ) -> None:
        super().__init__(status, title, detail, request_id)
        self.retry_after = retry_after


ERRORS = (InvalidParameters, Unauthenticated, Forbidden, NotFound, NotAcceptable, Unavailable)
ERROR_BY_STATUS: dict[int, type[EncountersError]] = {
    error.STATUS: error for error in ERRORS if error.STATUS
}


def problem_error(response: httpx.Response) -> EncountersError:
    """The exception of an error answer, from its problem details (or its status alone)."""
    problem = _problem(response)
    status = response.status_code
    title = _text(problem.get("title")) or _phrase(status)
    detail = _text(problem.get("detail"))
    request_id = _text(problem.get("request_id")) or response.headers.get("X-Request-ID", "")
    error = ERROR_BY_STATUS.get(status, EncountersError)
    if error is InvalidParameters:
        errors = problem.get("errors")
        return InvalidParameters(
            status, title, detail, request_id, errors if isinstance(errors, dict) else {}
        )
    if error is Unavailable:
        return Unavailable(status, title, detail, request_id, retry_after(response))
    return error(status, title, detail, request_id)


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delay-seconds or an HTTP-date), None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, said without the offset's authority
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of the body, or {} (a proxy's HTML page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
