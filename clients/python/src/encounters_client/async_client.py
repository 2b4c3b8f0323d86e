"""`AsyncEncountersClient`: `EncountersClient`'s calls as coroutines."""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx

from encounters_client.calls import RETRIED_FAILURES, BaseClient, Instant
from encounters_client.models import Encounter


class AsyncEncountersClient(BaseClient[httpx.AsyncClient]):
    """`EncountersClient` for asyncio: the same arguments, the same answers and errors."""

    def _connect(self, base_url: str, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def list_encounters(
        self,
        user: str,
        *,
        token: str | None = None,
        starts: Instant | None = None,
        ends: Instant | None = None,
        unit: int | None = None,
        online: bool | None = None,
    ) -> list[Encounter]:
        """The encounters `user` can book or see (as `EncountersClient.list_encounters`)."""
        call, budget = self._begin(user, token, starts, ends, unit, online)
        while True:
            request = call.request(self._http, budget.remaining())
            try:
                response = await self._http.send(request, stream=True)
            except RETRIED_FAILURES as failure:
                if (wait := budget.delay(failure)) is None:
                    raise
                await asyncio.sleep(wait)
                continue
            try:
                await response.aread()
            finally:
                await response.aclose()
            if (wait := budget.delay(response)) is None:
                return call.answer(response)
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncEncountersClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
