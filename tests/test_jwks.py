"""Tokens verified with keys from a real JWKS endpoint on 127.0.0.1 (README): by kid, cached,
refetched for an unknown kid at most once a minute, and still working through an outage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.tokens import TokenVerifier
from tests.database import database_with_dataset
from tests.live import Gunicorn, JwksServer, fetch
from tests.tokens import PROVIDER, Tokens

PATH = "/users/me/encounters"
KEYS: dict[str, Any] = {
    "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa-2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec-1": ec.generate_private_key(ec.SECP256R1()),
}
ALGORITHMS = {"rsa-1": "RS256", "rsa-2": "RS256", "ec-1": "ES256"}


def jwk(kid: str) -> dict[str, Any]:
    """The public JWK of one of KEYS, as an identity provider publishes it."""
    key = KEYS[kid]
    if isinstance(key, rsa.RSAPrivateKey):
        public = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "alg": ALGORITHMS[kid], "use": "sig"}


class Clock:
    """A monotonic clock the test moves forward, so a minute passes at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    """A JWKS endpoint publishing rsa-1 and ec-1."""
    server = JwksServer()
    server.keys = [jwk("rsa-1"), jwk("ec-1")]
    server.start()
    yield server
    server.stop()


@pytest.fixture
def config(config: dict[str, Any], jwks: JwksServer) -> dict[str, Any]:
    """A deployment taking RS256 and ES256 tokens signed by the JWKS endpoint's keys."""
    del config["JWT_SECRET"]
    config.update(JWT_JWKS_URL=jwks.url, JWT_ALGORITHMS="RS256,ES256", **PROVIDER)
    return config


@pytest.fixture
def clock(app: Flask) -> Clock:
    """The app's verifier, rebuilt on a clock the test controls."""
    clock = Clock()
    app.extensions["encounters.verifier"] = TokenVerifier(
        app.extensions["encounters.settings"], clock
    )
    return clock


def signed(tokens: Tokens, kid: str | None, signer: str | None = None) -> dict[str, str]:
    """An Authorization header with a token signed by KEYS[signer or kid], naming `kid`."""
    name = signer or kid
    assert name is not None
    headers = {"kid": kid} if kid else None
    token = tokens.mint(key=KEYS[name], algorithm=ALGORITHMS[name], headers=headers)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.usefixtures("dataset")
def test_rs256_and_es256_keys_come_from_the_endpoint_once(
    client: FlaskClient, jwks: JwksServer, tokens: Tokens
) -> None:
    for kid in ("rsa-1", "ec-1", "rsa-1", "ec-1"):
        response = client.get(PATH, headers=signed(tokens, kid))
        assert response.status_code == 200, response.get_json()
        assert isinstance(response.get_json(), list)
    assert jwks.fetches == 1


@pytest.mark.usefixtures("dataset", "clock")
def test_unknown_kid_within_the_minute_is_refused_without_a_fetch(
    client: FlaskClient, jwks: JwksServer, tokens: Tokens
) -> None:
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 200
    for _ in range(20):
        response = client.get(PATH, headers=signed(tokens, "unknown", signer="rsa-2"))
        assert response.status_code == 401
        assert "signing key is unknown" in response.get_json()["detail"]
    assert jwks.fetches == 1


@pytest.mark.usefixtures("dataset")
def test_key_rotation(client: FlaskClient, jwks: JwksServer, tokens: Tokens, clock: Clock) -> None:
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 200
    jwks.keys = [jwk("rsa-2"), jwk("ec-1")]  # the provider rotates: rsa-1 is withdrawn

    # Within the minute the new kid is unknown, and the endpoint is not asked again.
    assert client.get(PATH, headers=signed(tokens, "rsa-2")).status_code == 401
    assert jwks.fetches == 1

    clock.now += 61
    assert client.get(PATH, headers=signed(tokens, "rsa-2")).status_code == 200
    assert jwks.fetches == 2
    # The withdrawn key is gone with the set that no longer lists it.
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 401
    assert client.get(PATH, headers=signed(tokens, "ec-1")).status_code == 200
    assert jwks.fetches == 2


@pytest.mark.usefixtures("dataset")
def test_outage_keeps_cached_keys_working(
    client: FlaskClient, jwks: JwksServer, tokens: Tokens, clock: Clock
) -> None:
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 200
    jwks.stop()

    clock.now += 3600  # long past the age at which the set is refreshed: the refresh fails
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 200
    assert client.get(PATH, headers=signed(tokens, "ec-1")).status_code == 200

    # A kid that is not cached cannot be checked now: "try again", not "your token is bad".
    response = client.get(PATH, headers=signed(tokens, "rsa-2"))
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0

    jwks.keys = [jwk("rsa-1"), jwk("rsa-2"), jwk("ec-1")]
    jwks.start()
    clock.now += 61
    assert client.get(PATH, headers=signed(tokens, "rsa-2")).status_code == 200
    assert jwks.fetches == 2


@pytest.mark.usefixtures("dataset")
@pytest.mark.parametrize(
    "published",
    [
        [],  # the emergency step after a leak: withdraw every key
        [{**jwk("rsa-1"), "use": "enc"}, {**jwk("ec-1"), "use": "enc"}],  # no signing key left
    ],
    ids=["empty", "encryption-only"],
)
def test_a_set_with_no_usable_key_revokes_every_cached_key(
    client: FlaskClient, jwks: JwksServer, tokens: Tokens, clock: Clock, published: list[Any]
) -> None:
    leaked = signed(tokens, "rsa-1")
    assert client.get(PATH, headers=leaked).status_code == 200
    assert client.get(PATH, headers=signed(tokens, "ec-1")).status_code == 200
    jwks.keys = published

    clock.now += 600  # the age at which cached keys are refreshed (docs/operations.md)
    response = client.get(PATH, headers=leaked)
    assert response.status_code == 401
    assert "signing key is unknown" in response.get_json()["detail"]
    assert client.get(PATH, headers=signed(tokens, "ec-1")).status_code == 401
    assert jwks.fetches == 2


@pytest.mark.usefixtures("dataset")
def test_keys_kept_through_an_outage_expire_after_the_max_stale_age(
    client: FlaskClient, jwks: JwksServer, tokens: Tokens, clock: Clock
) -> None:
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 200
    jwks.stop()

    clock.now += 86400  # a day after the last answer: still trusted, at the bound
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 200
    clock.now += 61
    response = client.get(PATH, headers=signed(tokens, "rsa-1"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="encounters", error="invalid_token", error_description="the token\'s '
        'signing key is unconfirmed: the key set has been unreachable for over 86400 s"'
    )

    jwks.start()  # the provider is back: its answer is trusted for another day
    clock.now += 61
    assert client.get(PATH, headers=signed(tokens, "rsa-1")).status_code == 200


@pytest.mark.usefixtures("dataset")
def test_endpoint_down_from_the_start_is_a_503(
    client: FlaskClient, jwks: JwksServer, tokens: Tokens
) -> None:
    jwks.stop()
    response = client.get(PATH, headers=signed(tokens, "rsa-1"))
    assert response.status_code == 503
    assert "Retry-After" in response.headers


@pytest.mark.usefixtures("dataset")
@pytest.mark.parametrize(
    ("kid", "signer"),
    [
        (None, "rsa-1"),  # no kid: no key to pick
        ("rsa-1", "rsa-2"),  # a published kid, another key's signature
        ("rsa-1", "ec-1"),  # an ES256 token naming an RSA key
        ("ec-1", "rsa-1"),  # an RS256 token naming an EC key
    ],
)
def test_tokens_that_do_not_match_their_key_are_refused(
    client: FlaskClient, tokens: Tokens, kid: str | None, signer: str
) -> None:
    response = client.get(PATH, headers=signed(tokens, kid, signer=signer))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_gunicorn_serves_rs256_tokens_from_a_jwks_on_localhost(
    migrated_template: str, tmp_path: Path, jwks: JwksServer, tokens: Tokens
) -> None:
    """The deployment walk-through: JWT_JWKS_URL on 127.0.0.1, gunicorn, an RS256 token."""
    url = database_with_dataset(migrated_template, tmp_path)
    server = Gunicorn(
        {"DATABASE_URL": url, "JWT_JWKS_URL": jwks.url, "JWT_ALGORITHMS": "RS256",
         "WEB_CONCURRENCY": "2", **PROVIDER},
        tmp_path / "server.log",
    ).start()  # fmt: skip
    try:
        for _ in range(6):
            answer = fetch(f"{server.url}{PATH}", signed(tokens, "rsa-1"))
            assert answer.status == 200
            assert isinstance(answer.json(), list) and answer.json()
        refused = fetch(f"{server.url}{PATH}", signed(tokens, "ec-1"))  # ES256 is not allowed here
        assert refused.status == 401
    finally:
        server.stop()
    # Each worker fetched the set once, at most: the cache is per process.
    assert 1 <= jwks.fetches <= 2
