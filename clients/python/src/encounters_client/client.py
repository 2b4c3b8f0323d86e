"""`EncountersClient`: the service's list, called as a caller should (blocking)."""

from __future__ import annotations

import time
from types import TracebackType

import httpx

from encounters_client.calls import RETRIED_FAILURES, BaseClient, Instant
from encounters_client.models import Encounter


class EncountersClient(BaseClient[httpx.Client]):
    """A client of one encounters service, over one connection pool; close it (or use `with`).

    `token` is sent as the bearer token of every call that gives none of its own. `timeout` is
    each call's time in total, retries and their waits included; `retries` bounds the attempts
    after the first. `etag_cache=True` remembers each answer with its ETag and asks again with
    `If-None-Match`: a 304 returns the remembered list.
    """

    def _connect(self, base_url: str, timeout: float) -> httpx.Client:
        return httpx.Client(base_url=base_url, timeout=timeout)

    def list_encounters(
        self,
        user: str,
        *,
        token: str | None = None,
        starts: Instant | None = None,
        ends: Instant | None = None,
        unit: int | None = None,
        online: bool | None = None,
    ) -> list[Encounter]:
        """The encounters `user` can book (a student) or see (a staff member), by start.

        `user` is any spelling of a user (id, email, reference id, `me`, `ref:…`); `token`, the
        caller's (forwarded) token, overrides the client's. `starts`/`ends` (`from`/`to`): a
        datetime with its offset, or a date. Raises an `EncountersError` for any other answer.
        """
        call, budget = self._begin(user, token, starts, ends, unit, online)
        while True:
            request = call.request(self._http, budget.remaining())
            try:
                response = self._http.send(request, stream=True)
            except RETRIED_FAILURES as failure:
                if (wait := budget.delay(failure)) is None:
                    raise
                time.sleep(wait)
                continue
            try:
                response.read()
            finally:
                response.close()
            if (wait := budget.delay(response)) is None:
                return call.answer(response)
            time.sleep(wait)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> EncountersClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
