"""`etag_cache=True`: If-None-Match from the remembered ETag, the remembered list on 304."""

from __future__ import annotations

import pytest

from encounters_client import EncountersClient, EncountersError
from tests.stub import ENCOUNTER, Answer, Stub

ETAG = '"abc"'


def test_a_304_returns_the_remembered_list(stub: Stub) -> None:
    stub.script = [Answer(200, [ENCOUNTER], {"ETag": ETAG}), Answer(304)]
    with EncountersClient(stub.url, token="t", etag_cache=True) as client:
        first = client.list_encounters("ST/1", unit=3)
        second = client.list_encounters("ST/1", unit=3)
    assert second == first and len(second) == 1
    assert [seen.headers.get("If-None-Match") for seen in stub.seen] == [None, ETAG]


def test_the_etag_is_remembered_per_url_and_token(stub: Stub) -> None:
    stub.script = [Answer(200, [ENCOUNTER], {"ETag": ETAG})]
    with EncountersClient(stub.url, token="t", etag_cache=True) as client:
        client.list_encounters("ST-1")
        client.list_encounters("ST-1", token="other")
        client.list_encounters("ST-2")
        client.list_encounters("ST-1", unit=4)
        client.list_encounters("ST-1")
    sent = [seen.headers.get("If-None-Match") for seen in stub.seen]
    assert sent == [None, None, None, None, ETAG]


def test_without_the_cache_nothing_is_remembered(stub: Stub) -> None:
    stub.script = [Answer(200, [ENCOUNTER], {"ETag": ETAG})]
    with EncountersClient(stub.url) as client:
        client.list_encounters("me")
        client.list_encounters("me")
    assert [seen.headers.get("If-None-Match") for seen in stub.seen] == [None, None]


def test_a_304_without_a_remembered_list_is_an_error(stub: Stub) -> None:
    stub.script = [Answer(304)]
    with EncountersClient(stub.url, etag_cache=True) as client, pytest.raises(EncountersError):
        client.list_encounters("me")


def test_the_caller_may_change_the_list_it_got(stub: Stub) -> None:
    stub.script = [Answer(200, [ENCOUNTER], {"ETag": ETAG}), Answer(304)]
    with EncountersClient(stub.url, etag_cache=True) as client:
        client.list_encounters("me").clear()
        assert len(client.list_encounters("me")) == 1
