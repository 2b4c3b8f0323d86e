"""One call, whichever client makes it: the request, the retries' budget, and the answer."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar
from urllib.parse import quote

import httpx

from encounters_client.cache import EtagCache, Key
from encounters_client.errors import problem_error, retry_after
from encounters_client.models import Encounter
from encounters_client.tracing import trace_headers

__version__ = "1.0.0"
USER_AGENT = f"encounters-client/{__version__}"
# Before any answer, the request may not have reached the service at all: safe to send again.
RETRIED_FAILURES = (httpx.NetworkError, httpx.RemoteProtocolError)
FIRST_BACKOFF_SECONDS = 0.1

Instant = date | str  # a datetime (a date's subclass), a date, or text the service will judge
Http = TypeVar("Http", httpx.Client, httpx.AsyncClient)


def user_path(user: str) -> str:
    """The path of a user's list, `user` encoded whole (`/`, `+`, spaces, non-ASCII)."""
    segment = quote(user, safe="")
    if segment in (".", ".."):  # a dot segment would be resolved away by any URL library
        segment = segment.replace(".", "%2E")
    return f"/users/{segment}/encounters"


def query(
    starts: Instant | None, ends: Instant | None, unit: int | None, online: bool | None
) -> tuple[tuple[str, str], ...]:
    """The query parameters, by their wire names, as given (the service judges them)."""
    params = [("from", _instant(starts)), ("to", _instant(ends))]
    params += [("unit", None if unit is None else str(unit))]
    params += [("online", None if online is None else str(online).lower())]
    return tuple((name, value) for name, value in params if value is not None)


def _instant(value: Instant | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


@dataclass(frozen=True)
class Call:
    """One `list_encounters`: what is sent on every attempt, and how its answer is read."""

    path: str
    params: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    cache: EtagCache | None
    cache_key: Key

    @classmethod
    def prepare(
        cls,
        user: str,
        token: str | None,
        params: tuple[tuple[str, str], ...],
        cache: EtagCache | None,
    ) -> Call:
        """The call's request, its `traceparent` taken from the caller's context now."""
        path = user_path(user)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **trace_headers()}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        # The token is kept as a digest: the cache holds no credential.
        token_key = hashlib.sha256(token.encode()).hexdigest() if token is not None else ""
        key = (str(httpx.URL(path, params=params)), token_key)
        etag = cache.etag(key) if cache else None
        if etag:
            headers["If-None-Match"] = etag
        return cls(path, params, headers, cache, key)

    def request(self, http: httpx.Client | httpx.AsyncClient, timeout: float) -> httpx.Request:
        """The request of one attempt, allowed what is left of the budget."""
        return http.build_request(
            "GET", self.path, params=self.params, headers=self.headers, timeout=timeout
        )

    def answer(self, response: httpx.Response) -> list[Encounter]:
        """The list of a 200 (or the remembered one on 304); any other answer raises its error."""
        if response.status_code == 304 and self.cache is not None:
            remembered = self.cache.remembered(self.cache_key)
            if remembered is not None:
                return remembered
        if response.status_code != 200:
            raise problem_error(response)
        encounters = [Encounter.from_wire(item) for item in response.json()]
        etag = response.headers.get("ETag")
        if self.cache is not None and etag:
            self.cache.remember(self.cache_key, etag, encounters)
        return encounters


class Budget:
    """A call's time (`timeout`, in total) and its retries: what may be tried again, and when."""

    def __init__(self, timeout: float, retries: int) -> None:
        self.deadline = time.monotonic() + timeout
        self.retries_left = retries
        self.failures = 0

    def remaining(self) -> float:
        """Seconds left for the call."""
        return max(0.0, self.deadline - time.monotonic())

    def delay(self, outcome: httpx.Response | Exception) -> float | None:
        """Seconds to wait before the next attempt, or None: the outcome is final.

        Only a 503 that says when to come back (`Retry-After`) and a connection that failed
        before any answer are tried again, and only while the wait leaves time for an attempt.
        """
        if isinstance(outcome, httpx.Response):
            wait = retry_after(outcome) if outcome.status_code == 503 else None
        elif isinstance(outcome, RETRIED_FAILURES):
            wait = FIRST_BACKOFF_SECONDS * 2**self.failures
            self.failures += 1
        else:
            wait = None
        if wait is None or self.retries_left <= 0 or wait >= self.remaining():
            return None
        self.retries_left -= 1
        return wait


class BaseClient(Generic[Http]):
    """What both clients share: the connection pool, the default token, the budget of a call
    and the ETag cache."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        etag_cache: bool = False,
    ) -> None:
        self._http: Http = self._connect(base_url, timeout)
        self._token = token
        self._timeout = timeout
        self._retries = retries
        self._cache = EtagCache() if etag_cache else None

    def _connect(self, base_url: str, timeout: float) -> Http:
        """The connection pool (httpx's client)."""
        raise NotImplementedError

    def _begin(
        self,
        user: str,
        token: str | None,
        starts: Instant | None,
        ends: Instant | None,
        unit: int | None,
        online: bool | None,
    ) -> tuple[Call, Budget]:
        """A call (a per-call token overrides the client's) and its budget, starting now."""
        token = token if token is not None else self._token
        call = Call.prepare(user, token, query(starts, ends, unit, online), self._cache)
        return call, Budget(self._timeout, self._retries)
