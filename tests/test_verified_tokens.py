"""The verified-token memory (service/verified_tokens.py): it saves PyJWT's work on a token seen
before and changes no answer: whole-token keys, successes only, never past `exp`, bounded."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from service.verified_tokens import Verified, VerifiedTokens

PATH = "/users/me/encounters"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(expires: float) -> Verified:
    return Verified(principal="someone", expires=expires, kid=None, key=None)


def test_an_entry_is_used_until_exp_and_never_after() -> None:
    clock = Clock(1000.0)
    memory = VerifiedTokens(clock=clock)
    memory.put("token", entry(expires=1060))
    assert memory.get("token") is not None
    clock.now = 1059.999
    assert memory.get("token") is not None
    clock.now = 1060
    assert memory.get("token") is None
    clock.now = 1000.0  # a clock that steps back does not revive it: the entry is gone
    assert memory.get("token") is None


def test_only_the_whole_token_finds_an_entry() -> None:
    memory = VerifiedTokens(clock=Clock(0))
    memory.put("aaa.bbb.ccc", entry(expires=10))
    for other in ("aaa.bbb.cc", "aaa.bbb.ccc ", "AAA.BBB.CCC", "aaa.bbb.ccd"):
        assert memory.get(other) is None


def test_it_is_bounded_and_drops_the_oldest_first() -> None:
    memory = VerifiedTokens(size=3, clock=Clock(0))
    for name in ("a", "b", "c", "d"):
        memory.put(name, entry(expires=10))
    assert len(memory) == 3
    assert memory.get("a") is None
    assert all(memory.get(name) is not None for name in ("b", "c", "d"))


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT decodes (verifies) while the test runs."""
    seen: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


@pytest.mark.usefixtures("dataset")
def test_a_token_seen_before_is_not_verified_again(
    client: FlaskClient, tokens: Any, decodes: list[str]
) -> None:
    headers = tokens.header()
    for _ in range(3):
        assert client.get(PATH, headers=headers).status_code == 200
    assert len(decodes) == 1


@pytest.mark.usefixtures("dataset")
def test_a_refused_token_is_verified_every_time(
    client: FlaskClient, tokens: Any, decodes: list[str]
) -> None:
    token = tokens.mint()
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        response = client.get(PATH, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
    assert len(decodes) == 2
    # A remembered token does not vouch for a forged copy of it.
    assert client.get(PATH, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    response = client.get(PATH, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.usefixtures("dataset")
def test_the_token_is_checked_before_its_memory_is(client: FlaskClient, tokens: Any) -> None:
    token = tokens.mint()
    assert client.get(PATH, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # The same token behind another scheme is no bearer token: no memory answers for it.
    response = client.get(PATH, headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401
