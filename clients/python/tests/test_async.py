"""`AsyncEncountersClient`: the same requests, answers, errors and retries, as coroutines."""

from __future__ import annotations

import asyncio

import pytest

from encounters_client import AsyncEncountersClient, Encounter, NotFound
from tests.stub import DROP, ENCOUNTER, Answer, Stub, problem


def test_the_async_client_answers_as_the_blocking_one(stub: Stub) -> None:
    stub.script = [
        Answer(503, problem(503, "Service Unavailable", "down"), {"Retry-After": "0"}),
        DROP,
        Answer(200, [ENCOUNTER], {"ETag": '"e"'}),
        Answer(304),
        Answer(404, problem(404, "Not Found", "nobody")),
    ]

    async def calls() -> tuple[list[Encounter], list[Encounter]]:
        async with AsyncEncountersClient(stub.url, token="t", etag_cache=True) as client:
            first = await client.list_encounters("ST/2026 7+", unit=3, token="forwarded")
            again = await client.list_encounters("ST/2026 7+", unit=3, token="forwarded")
            with pytest.raises(NotFound):
                await client.list_encounters("nobody")
            return first, again

    first, again = asyncio.run(calls())
    assert [encounter.unit_number for encounter in first] == [3]
    assert again == first
    paths = {seen.path for seen in stub.seen[:4]}
    assert paths == {"/users/ST%2F2026%207%2B/encounters?unit=3"}
    assert {seen.headers["Authorization"] for seen in stub.seen} == {
        "Bearer forwarded",
        "Bearer t",
    }
    assert stub.seen[3].headers["If-None-Match"] == '"e"'
