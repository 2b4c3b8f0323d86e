"""Public-key tokens with JWT_PUBLIC_KEY (README): RS256, ES256, and JWT_TOKEN_TYPE."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask.testing import FlaskClient

from tests.dataset import Dataset
from tests.tokens import PROVIDER, Tokens

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())
PATH = "/users/me/encounters"


def public_pem(private_key: Any) -> str:
    """The PEM of a private key's public half."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def rsa_deployment(config: dict[str, Any]) -> dict[str, Any]:
    """A deployment verifying RS256 tokens with a PEM public key."""
    del config["JWT_SECRET"]
    config.update(JWT_PUBLIC_KEY=public_pem(RSA_KEY), JWT_ALGORITHMS="RS256", **PROVIDER)
    return config


@pytest.fixture
def ec_deployment(config: dict[str, Any]) -> dict[str, Any]:
    """A deployment verifying ES256 tokens with a PEM public key."""
    del config["JWT_SECRET"]
    config.update(JWT_PUBLIC_KEY=public_pem(EC_KEY), JWT_ALGORITHMS="ES256", **PROVIDER)
    return config


@pytest.mark.usefixtures("rsa_deployment")
def test_rs256_token_is_accepted(client: FlaskClient, dataset: Dataset, tokens: Tokens) -> None:
    response = client.get(PATH, headers=bearer(tokens.mint(key=RSA_KEY, algorithm="RS256")))
    assert response.status_code == 200
    assert str(dataset["lis_booked"]) in {e["Id"] for e in response.get_json()}


@pytest.mark.usefixtures("ec_deployment")
def test_es256_token_is_accepted(client: FlaskClient, dataset: Dataset, tokens: Tokens) -> None:
    response = client.get(PATH, headers=bearer(tokens.mint(key=EC_KEY, algorithm="ES256")))
    assert response.status_code == 200
    assert str(dataset["lis_booked"]) in {e["Id"] for e in response.get_json()}


def _forged(tokens: Tokens, name: str) -> str:
    pem = public_pem(RSA_KEY).encode()
    forgeries = {
        "another RSA key": lambda: tokens.mint(key=OTHER_RSA_KEY, algorithm="RS256"),
        "RS512 not allowed": lambda: tokens.mint(key=RSA_KEY, algorithm="RS512"),
        "PS256 not allowed": lambda: tokens.mint(key=RSA_KEY, algorithm="PS256"),
        "an EC key": lambda: tokens.mint(key=EC_KEY, algorithm="ES256"),
        "HMAC over the public PEM": lambda: _hmac_with(pem, tokens),
        "an HMAC secret": lambda: tokens.mint(),
        "expired": lambda: tokens.mint(key=RSA_KEY, algorithm="RS256", exp=1_000_000),
    }
    return forgeries[name]()


def _hmac_with(secret: bytes, tokens: Tokens) -> str:
    # PyJWT refuses a PEM as an HMAC key; the attack is signing by hand, as an attacker would.
    import base64
    import hashlib
    import hmac
    import json
    import time

    def part(data: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    now = int(time.time())
    signing_input = (
        part({"alg": "HS256", "typ": "JWT"})
        + b"."
        + part({"sub": "ST-000123", "role": "Student", "iat": now, "exp": now + 600})
    )
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature.rstrip(b"=")).decode()


@pytest.mark.usefixtures("rsa_deployment", "dataset")
@pytest.mark.parametrize(
    "forgery",
    [
        "another RSA key",
        "RS512 not allowed",
        "PS256 not allowed",
        "an EC key",
        "HMAC over the public PEM",
        "an HMAC secret",
        "expired",
    ],
)
def test_rs256_deployment_refuses(client: FlaskClient, tokens: Tokens, forgery: str) -> None:
    response = client.get(PATH, headers=bearer(_forged(tokens, forgery)))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="encounters", error="invalid_token"'
    )


@pytest.mark.usefixtures("ec_deployment", "dataset")
@pytest.mark.parametrize(
    ("key", "algorithm"),
    [(OTHER_EC_KEY, "ES256"), (RSA_KEY, "RS256"), (P384_KEY, "ES384")],
)
def test_es256_deployment_refuses(
    client: FlaskClient, tokens: Tokens, key: Any, algorithm: str
) -> None:
    response = client.get(PATH, headers=bearer(tokens.mint(key=key, algorithm=algorithm)))
    assert response.status_code == 401


@pytest.fixture
def typed_deployment(rsa_deployment: dict[str, Any]) -> dict[str, Any]:
    """An RS256 deployment that takes RFC 9068 access tokens only."""
    rsa_deployment["JWT_TOKEN_TYPE"] = "at+jwt"
    return rsa_deployment


@pytest.mark.usefixtures("typed_deployment", "dataset")
@pytest.mark.parametrize(
    ("typ", "status"),
    [
        ("at+jwt", 200),
        ("AT+JWT", 200),
        ("application/at+jwt", 200),
        ("JWT", 401),
        (None, 401),
    ],
)
def test_token_type_is_checked_when_set(
    client: FlaskClient, tokens: Tokens, typ: str | None, status: int
) -> None:
    token = tokens.mint(key=RSA_KEY, algorithm="RS256", headers={"typ": typ})
    response = client.get(PATH, headers=bearer(token))
    assert response.status_code == status
    if status == 401:
        assert "type must be 'at+jwt'" in response.get_json()["detail"]


@pytest.mark.usefixtures("rsa_deployment", "dataset")
def test_token_type_is_not_required_when_unset(client: FlaskClient, tokens: Tokens) -> None:
    token = tokens.mint(key=RSA_KEY, algorithm="RS256", headers={"typ": "anything"})
    assert client.get(PATH, headers=bearer(token)).status_code == 200
