"""Bearer tokens (README), verified for real, and the 401s of every way they fail."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from service.app import create_app
from tests.dataset import Dataset
from tests.tokens import PROVIDER, SECRET, Tokens

PLAIN = 'Bearer realm="encounters"'
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ASPNET_ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def client_with(config: dict[str, Any], **overrides: str) -> FlaskClient:
    return create_app({**config, **overrides}).test_client()


def call(client: FlaskClient, authorization: str | None) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.get("/users/me/encounters", headers=headers)


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(
        'Bearer realm="encounters", error="invalid_token", error_description="'
    )
    assert response.get_json()["status"] == 401


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Token abc", "Bearer"])
def test_no_bearer_token_is_a_plain_challenge(
    client: FlaskClient, dataset: Dataset, authorization: str | None
) -> None:
    response = call(client, authorization)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == PLAIN
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, scheme: str
) -> None:
    assert call(client, f"{scheme} {tokens.mint()}").status_code == 200


def now() -> int:
    return int(time.time())


def none_token() -> str:
    return jwt.encode(
        {"sub": "ST-000123", "role": "Student", "exp": now() + 600}, None, algorithm="none"
    )


FAILURES: list[tuple[str, Any]] = [
    ("garbage", lambda t: "not-a-jwt"),
    ("three garbage parts", lambda t: "a.b.c"),
    ("expired", lambda t: t.mint(exp=now() - 120)),
    ("not yet valid", lambda t: t.mint(nbf=now() + 120)),
    ("no exp", lambda t: t.mint(exp=None)),
    ("wrong key", lambda t: t.mint(key="another-secret-that-is-long-enough-000000")),
    ("alg none", lambda t: none_token()),
    ("RS256 against an HMAC deployment", lambda t: t.mint(key=RSA_KEY, algorithm="RS256")),
    ("HS512 when only HS256 is pinned", lambda t: t.mint(algorithm="HS512")),
    ("exp as a string", lambda t: t.mint(exp=str(now() + 600))),
    ("nbf as a string", lambda t: t.mint(nbf=str(now() - 10))),
    ("iat as a string", lambda t: t.mint(iat=str(now()))),
    ("exp as a boolean", lambda t: t.mint(exp=True)),
    ("sub as a number", lambda t: t.mint(subject=123)),
    ("sub as a list", lambda t: t.mint(subject=["ST-000123"])),
    ("sub empty", lambda t: t.mint(subject="")),
    ("no sub", lambda t: t.mint(subject=None)),
    ("tampered payload", lambda t: t.mint().rsplit(".", 1)[0] + ".AAAA"),
    ("crit header", lambda t: t.mint(headers={"crit": ["exp"]})),
]


# The HS512 case signs with the deployment's 42-byte secret on purpose: PyJWT's key-length warning
# about that token is expected.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(("case", "make"), FAILURES, ids=[c for c, _ in FAILURES])
def test_token_failures_are_401_invalid_token(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, case: str, make: Any
) -> None:
    response = call(client, f"Bearer {make(tokens)}")
    assert_invalid_token(response)
    assert SECRET not in response.get_data(as_text=True)


def test_leeway_accepts_small_clock_skew(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    assert call(client, f"Bearer {tokens.mint(exp=now() - 10)}").status_code == 200
    assert call(client, f"Bearer {tokens.mint(nbf=now() + 10, iat=now() + 10)}").status_code == 200
    assert_invalid_token(call(client, f"Bearer {tokens.mint(exp=now() - 40)}"))


def test_leeway_comes_from_configuration(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    strict = client_with(config, JWT_LEEWAY_SECONDS="0")
    assert_invalid_token(call(strict, f"Bearer {tokens.mint(exp=now() - 2)}"))


def test_expired_message_says_so(client: FlaskClient, dataset: Dataset, tokens: Tokens) -> None:
    response = call(client, f"Bearer {tokens.mint(exp=now() - 120)}")
    assert 'error_description="the token has expired"' in response.headers["WWW-Authenticate"]


def test_issuer_and_audience_are_checked_when_configured(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    client = client_with(config, JWT_ISSUER="https://id.example", JWT_AUDIENCE="encounters-api")
    good = tokens.mint(iss="https://id.example", aud="encounters-api")
    assert call(client, f"Bearer {good}").status_code == 200
    listed = tokens.mint(iss="https://id.example", aud=["other", "encounters-api"])
    assert call(client, f"Bearer {listed}").status_code == 200
    for bad in (
        tokens.mint(iss="https://evil.example", aud="encounters-api"),
        tokens.mint(iss="https://id.example", aud="another-api"),
        tokens.mint(iss=None, aud="encounters-api"),  # no iss
        tokens.mint(iss="https://id.example", aud=None),  # no aud
    ):
        assert_invalid_token(call(client, f"Bearer {bad}"))


def test_audience_is_not_checked_when_not_configured(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    assert call(client, f"Bearer {tokens.mint(aud='whatever')}").status_code == 200


def test_token_type_is_checked_when_configured(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    client = client_with(config, JWT_TOKEN_TYPE="at+jwt")
    for typ in ("at+jwt", "AT+JWT", "application/at+jwt"):
        assert call(client, f"Bearer {tokens.mint(headers={'typ': typ})}").status_code == 200
    for typ in ("JWT", "jwt", None):
        headers = {"typ": typ} if typ else {}
        token = jwt.encode(
            {"sub": "ST-000123", "role": "Student", "exp": now() + 60}, SECRET, headers=headers
        )
        if typ is None:  # PyJWT adds typ=JWT by default; drop it by hand
            token = jwt.api_jws.PyJWS().encode(
                b'{"sub":"ST-000123","role":"Student","exp":%d}' % (now() + 60),
                SECRET,
                headers={"typ": None},
            )
        assert_invalid_token(call(client, f"Bearer {token}"))


def test_subject_and_role_claims_come_from_configuration(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    client = client_with(config, JWT_SUBJECT_CLAIM="upn", JWT_ROLE_CLAIM=ASPNET_ROLE)
    token = tokens.mint(subject="ignored", role=None, upn="SM-1", **{ASPNET_ROLE: ["StaffMember"]})
    response = client.get(
        "/users/ST-000123/encounters", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    # The default claims mean nothing to this deployment.
    plain = tokens.mint("SM-1", "StaffMember")
    assert (
        client.get(
            "/users/ST-000123/encounters", headers={"Authorization": f"Bearer {plain}"}
        ).status_code
        == 401
    )


def test_a_public_key_deployment_accepts_its_tokens_and_no_hmac_ones(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    pem = (
        RSA_KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rsa_config = {k: v for k, v in config.items() if not k.startswith("JWT_")}
    client = client_with(rsa_config, JWT_PUBLIC_KEY=pem, JWT_ALGORITHMS="RS256", **PROVIDER)
    assert call(client, f"Bearer {tokens.mint(key=RSA_KEY, algorithm='RS256')}").status_code == 200
    assert_invalid_token(call(client, f"Bearer {tokens.mint()}"))


def test_issue_token_makes_a_token_the_service_accepts(
    app: Any, client: FlaskClient, dataset: Dataset
) -> None:
    result = app.test_cli_runner().invoke(
        args=["issue-token", "SM-1", "--role", "StaffMember", "--ttl", "60"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert call(client, f"Bearer {token}").status_code == 200
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "SM-1" and claims["role"] == "StaffMember"
    assert 55 <= claims["exp"] - claims["iat"] <= 60


def test_issue_token_refuses_a_public_key_deployment(config: dict[str, Any]) -> None:
    pem = (
        RSA_KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rsa_config = {k: v for k, v in config.items() if not k.startswith("JWT_")}
    app = create_app({**rsa_config, **PROVIDER, "JWT_PUBLIC_KEY": pem})
    result = app.test_cli_runner().invoke(args=["issue-token", "SM-1"])
    assert result.exit_code != 0 and "HMAC" in result.output
