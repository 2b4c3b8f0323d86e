"""Hostile tokens, as a table: each attack, the deployment it targets, what the caller must see.

Tokens are forged by hand (base64url + hmac, or PyJWT for RS256 with extra headers), so the
table can hold what PyJWT itself refuses to make: `alg: none`, HS256 signed with a PEM public
key, claims of the wrong JSON type. Every row checks the status, the exact `WWW-Authenticate`
(or its absence), the problem body, that the token is never echoed, and that the logs hold no
token, email or secret. Header URLs (`jku`, `x5u`, a `kid` URL) point at a local server that
counts hits: none may ever reach it.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import http.server
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.app import create_app
from tests.dataset import Dataset
from tests.leaks import leaks_in, log_text
from tests.live import free_port
from tests.tokens import PROVIDER, SECRET

REALM_ONLY = 'Bearer realm="encounters"'


def invalid_token(description: str) -> str:
    """The challenge of a token that was sent and failed (RFC 6750 section 3)."""
    return f'Bearer realm="encounters", error="invalid_token", error_description="{description}"'


MALFORMED = invalid_token("the token is malformed")
BAD_ALGORITHM = invalid_token("the token's algorithm is not accepted")
BAD_SIGNATURE = invalid_token("the token's signature does not verify")
NO_SUBJECT = invalid_token("the token names no subject")
WRONG_TYPE = invalid_token("the token's type must be 'at+jwt'")
EXPIRED = invalid_token("the token has expired")


def not_a_number(claim: str) -> str:
    """The challenge for a NumericDate claim of another JSON type."""
    return invalid_token(f"the '{claim}' claim must be a number")


def b64(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    """A JWT segment: JSON (or raw bytes) as base64url."""
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


AUDIENCE = {"aud": PROVIDER["JWT_AUDIENCE"], "iss": PROVIDER["JWT_ISSUER"]}


def claims(**changes: Any) -> dict[str, Any]:
    """A student's valid claims, with `changes` applied (None removes a claim).

    They name the identity provider and this service, as a public-key deployment requires.
    """
    now = int(time.time())
    base: dict[str, Any] = {"sub": "ST-000123", "role": "Student", "iat": now, "exp": now + 600}
    base.update(AUDIENCE)
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def hs256(header: Any, payload: Any, key: bytes = SECRET.encode(), digest: str = "sha256") -> str:
    """A token signed by hand with HMAC under `key` (any bytes, a PEM key included)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """A token with an empty signature, as `alg: none` makes them."""
    return f"{segment(header)}.{segment(payload)}."


@dataclass
class Kit:
    """What the forgers use: the deployment's RSA key, an attacker's, and the bait server."""

    deployment_key: rsa.RSAPrivateKey
    attacker_key: rsa.RSAPrivateKey
    public_pem: bytes
    bait_url: str

    def rs256(self, payload: dict[str, Any], *, attacker: bool = True, **header: Any) -> str:
        """An RS256 token with extra header fields, signed by the attacker (or the deployment)."""
        key = self.attacker_key if attacker else self.deployment_key
        return jwt.encode(payload, key, algorithm="RS256", headers=header)

    def attacker_jwk(self) -> dict[str, Any]:
        """The attacker's public key as a JWK, for an embedded `jwk` header."""
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.attacker_key.public_key())
        )
        return jwk


DEPLOYMENTS: dict[str, Callable[[Kit], dict[str, Any]]] = {
    "hmac": lambda kit: {},
    "rsa": lambda kit: {
        "JWT_SECRET": None,
        "JWT_PUBLIC_KEY": kit.public_pem.decode(),
        "JWT_ALGORITHMS": "RS256",
        **PROVIDER,
    },
    "typed": lambda kit: {"JWT_TOKEN_TYPE": "at+jwt"},
    "audience": lambda kit: PROVIDER,
    "no-leeway": lambda kit: {"JWT_LEEWAY_SECONDS": "0"},
}


@dataclass(frozen=True)
class Attack:
    """One row: how the Authorization header is made, and what the caller must get back."""

    name: str
    authorization: Callable[[Kit], str | None]
    status: int
    challenge: str | None  # the exact WWW-Authenticate; None: the header must be absent
    deployment: str = "hmac"
    # A dataset email in the path (Ana's: the caller's own), so the log check sees one sent.
    path: str = "/users/Ana.Lima%40example.com/encounters"


HS = {"alg": "HS256", "typ": "JWT"}
STAFF = {"sub": "SM-1", "role": "StaffMember"}
FULL_WIDTH_STUDENT = "".join(chr(ord(letter) + 0xFEE0) for letter in "Student")


def bearer(make: Callable[[Kit], str]) -> Callable[[Kit], str]:
    """The Authorization value carrying the token `make` forges."""
    return lambda kit: f"Bearer {make(kit)}"


ATTACKS = [
    # Controls: the deployments accept what they should, so every 401 below is the attack's doing.
    Attack("valid hmac token", bearer(lambda k: hs256(HS, claims())), 200, None),
    Attack("scheme in lower case", lambda k: f"bearer {hs256(HS, claims())}", 200, None),
    Attack(
        "valid rsa token",
        bearer(lambda k: k.rs256(claims(), attacker=False)),
        200,
        None,
        "rsa",
    ),
    # No or unusable credentials.
    Attack("no authorization header", lambda k: None, 401, REALM_ONLY),
    Attack("basic scheme", lambda k: "Basic dXNlcjpwYXNz", 401, REALM_ONLY),
    Attack("bearer without token", lambda k: "Bearer ", 401, REALM_ONLY),
    Attack("not a jwt", lambda k: "Bearer not-a-jwt", 401, MALFORMED),
    Attack(
        "two tokens",
        lambda k: f"Bearer {hs256(HS, claims())} {hs256(HS, claims())}",
        401,
        MALFORMED,
    ),
    Attack(
        "header not json",
        bearer(lambda k: f"{segment(b'nope')}.{segment(claims())}.x"),
        401,
        MALFORMED,
    ),
    Attack("header a json list", bearer(lambda k: hs256(["HS256"], claims())), 401, MALFORMED),
    Attack("payload a json list", bearer(lambda k: hs256(HS, ["ST-000123"])), 401, MALFORMED),
    # alg: none, in any spelling, and algorithms the deployment does not pin.
    *(
        Attack(
            f"alg {alg}",
            bearer(lambda k, alg=alg: unsigned({"alg": alg}, claims())),
            401,
            BAD_ALGORITHM,
        )
        for alg in ("none", "None", "NONE", "nOnE")
    ),
    Attack(
        "alg none with a signature",
        bearer(lambda k: hs256({"alg": "none"}, claims())),
        401,
        BAD_ALGORITHM,
    ),
    Attack("no alg", bearer(lambda k: hs256({"typ": "JWT"}, claims())), 401, BAD_ALGORITHM),
    Attack(
        "alg HS512 on an HS256 deployment",
        bearer(lambda k: hs256({"alg": "HS512"}, claims(), digest="sha512")),
        401,
        BAD_ALGORITHM,
    ),
    Attack("RS256 on an HMAC deployment", bearer(lambda k: k.rs256(claims())), 401, BAD_ALGORITHM),
    # Key confusion: HS256 signed with the deployment's own RSA public key (PEM bytes).
    Attack(
        "HS256 signed with the public key",
        bearer(lambda k: hs256(HS, claims(), k.public_pem)),
        401,
        BAD_ALGORITHM,
        "rsa",
    ),
    Attack(
        "HS256 signed with the public key, STAFF",
        bearer(lambda k: hs256(HS, claims(**STAFF), k.public_pem.strip())),
        401,
        BAD_ALGORITHM,
        "rsa",
    ),
    # Signatures: stripped, tampered, or made with another key.
    Attack(
        "signature stripped",
        bearer(lambda k: hs256(HS, claims()).rsplit(".", 1)[0] + "."),
        401,
        BAD_SIGNATURE,
    ),
    Attack(
        "payload tampered",
        bearer(
            lambda k: (
                segment(HS)
                + "."
                + segment(claims(**STAFF))
                + "."
                + hs256(HS, claims()).rsplit(".", 1)[1]
            )
        ),
        401,
        BAD_SIGNATURE,
    ),
    Attack(
        "signed with another secret",
        bearer(lambda k: hs256(HS, claims(), b"attacker-secret-0123456789abcdef")),
        401,
        BAD_SIGNATURE,
    ),
    # kid: never a path, a query or a place to fetch from.
    Attack(
        "kid with a path",
        bearer(lambda k: hs256({**HS, "kid": "../../../../../../dev/null"}, claims(), b"")),
        401,
        BAD_SIGNATURE,
    ),
    Attack(
        "kid with sql",
        bearer(lambda k: hs256({**HS, "kid": "x' UNION SELECT 'k' --"}, claims(), b"k")),
        401,
        BAD_SIGNATURE,
    ),
    Attack(
        "kid with a url",
        bearer(lambda k: hs256({**HS, "kid": k.bait_url + "/key"}, claims(), b"k")),
        401,
        BAD_SIGNATURE,
    ),
    # jku, x5u and jwk headers: ignored (never fetched, never trusted).
    Attack(
        "jku to an attacker's key set",
        bearer(lambda k: k.rs256(claims(), jku=k.bait_url + "/jwks.json")),
        401,
        BAD_SIGNATURE,
        "rsa",
    ),
    Attack(
        "x5u to an attacker's certificate",
        bearer(lambda k: k.rs256(claims(), x5u=k.bait_url + "/cert.pem")),
        401,
        BAD_SIGNATURE,
        "rsa",
    ),
    Attack(
        "embedded jwk of the attacker",
        bearer(lambda k: k.rs256(claims(), jwk=k.attacker_jwk())),
        401,
        BAD_SIGNATURE,
        "rsa",
    ),
    Attack(
        "valid token with a jku header is still valid (jku ignored)",
        bearer(lambda k: k.rs256(claims(), attacker=False, jku=k.bait_url + "/jwks.json")),
        200,
        None,
        "rsa",
    ),
    # crit: extensions we do not understand make the token unusable (RFC 7515 4.1.11).
    Attack(
        "crit header",
        bearer(lambda k: hs256({**HS, "crit": ["exp"]}, claims())),
        401,
        MALFORMED,
    ),
    Attack(
        "crit with b64",
        bearer(lambda k: hs256({**HS, "b64": False, "crit": ["b64"]}, claims())),
        401,
        MALFORMED,
    ),
    # A huge token (through a real server gunicorn answers 431 first: see test_input_limits).
    Attack(
        "64 KiB token",
        bearer(lambda k: hs256(HS, claims(pad="x" * 65536), b"forged")),
        401,
        BAD_SIGNATURE,
    ),
    Attack("64 KiB of junk", lambda k: "Bearer " + "A" * 65536, 401, MALFORMED),
    # typ, when JWT_TOKEN_TYPE is set (RFC 9068 access tokens).
    Attack(
        "typ JWT where at+jwt is required",
        bearer(lambda k: hs256(HS, claims())),
        401,
        WRONG_TYPE,
        "typed",
    ),
    Attack(
        "no typ where at+jwt is required",
        bearer(lambda k: hs256({"alg": "HS256"}, claims())),
        401,
        WRONG_TYPE,
        "typed",
    ),
    Attack(
        "typ at+jwt",
        bearer(lambda k: hs256({"alg": "HS256", "typ": "at+jwt"}, claims())),
        200,
        None,
        "typed",
    ),
    Attack(
        "typ application/AT+JWT",
        bearer(lambda k: hs256({"alg": "HS256", "typ": "application/AT+JWT"}, claims())),
        200,
        None,
        "typed",
    ),
    # Registered claims of the wrong JSON type (RFC 7519: NumericDate is a number).
    Attack(
        "exp a string",
        bearer(lambda k: hs256(HS, claims(exp=str(int(time.time()) + 600)))),
        401,
        not_a_number("exp"),
    ),
    Attack("nbf a string", bearer(lambda k: hs256(HS, claims(nbf="0"))), 401, not_a_number("nbf")),
    Attack("iat a string", bearer(lambda k: hs256(HS, claims(iat="0"))), 401, not_a_number("iat")),
    Attack(
        "exp missing",
        bearer(lambda k: hs256(HS, claims(exp=None))),
        401,
        invalid_token("the token has no 'exp' claim"),
    ),
    # The subject: a non-empty string, or the token names nobody.
    Attack("sub a number", bearer(lambda k: hs256(HS, claims(sub=123))), 401, NO_SUBJECT),
    Attack("sub a list", bearer(lambda k: hs256(HS, claims(sub=["ST-000123"]))), 401, NO_SUBJECT),
    Attack("sub empty", bearer(lambda k: hs256(HS, claims(sub=""))), 401, NO_SUBJECT),
    Attack("sub blank", bearer(lambda k: hs256(HS, claims(sub="   "))), 401, NO_SUBJECT),
    Attack("sub missing", bearer(lambda k: hs256(HS, claims(sub=None))), 401, NO_SUBJECT),
    Attack(
        "sub an object",
        bearer(lambda k: hs256(HS, claims(sub={"ref": "ST-000123"}))),
        401,
        NO_SUBJECT,
    ),
    Attack("sub of nobody", bearer(lambda k: hs256(HS, claims(sub="ST-999999"))), 403, None),
    Attack("sub 'me'", bearer(lambda k: hs256(HS, claims(sub="me"))), 403, None),
    # Roles: exact names, any case, nothing else.
    Attack(
        "role an object", bearer(lambda k: hs256(HS, claims(role={"name": "Student"}))), 403, None
    ),
    Attack(
        "role with a Cyrillic letter",
        bearer(lambda k: hs256(HS, claims(**{**STAFF, "role": "Staff\u041cember"}))),
        403,
        None,
    ),
    Attack(
        "role full-width", bearer(lambda k: hs256(HS, claims(role=FULL_WIDTH_STUDENT))), 403, None
    ),
    Attack(
        "role with a trailing space",
        bearer(lambda k: hs256(HS, claims(role="Student "))),
        403,
        None,
    ),
    Attack(
        "role with a zero-width space",
        bearer(lambda k: hs256(HS, claims(role="Stu\u200bdent"))),
        403,
        None,
    ),
    Attack("role missing", bearer(lambda k: hs256(HS, claims(role=None))), 403, None),
    Attack("role Admin", bearer(lambda k: hs256(HS, claims(role="Admin"))), 403, None),
    Attack(
        "staff role claimed by a student",
        bearer(lambda k: hs256(HS, claims(role="StaffMember"))),
        403,
        None,
    ),
    Attack("role in upper case", bearer(lambda k: hs256(HS, claims(role="STUDENT"))), 200, None),
    Attack(
        "role in a list", bearer(lambda k: hs256(HS, claims(role=["Admin", "Student"]))), 200, None
    ),
    # Audience and issuer.
    Attack(
        "another audience",
        bearer(lambda k: hs256(HS, claims(**{**AUDIENCE, "aud": "other"}))),
        401,
        invalid_token("the token is for another audience"),
        "audience",
    ),
    Attack(
        "no audience",
        bearer(lambda k: hs256(HS, claims(aud=None))),
        401,
        invalid_token("the token has no 'aud' claim"),
        "audience",
    ),
    Attack(
        "another issuer",
        bearer(lambda k: hs256(HS, claims(**{**AUDIENCE, "iss": "https://x"}))),
        401,
        invalid_token("the token is from another issuer"),
        "audience",
    ),
    Attack(
        "audience among several",
        bearer(lambda k: hs256(HS, claims(**{**AUDIENCE, "aud": ["other", "encounters-api"]}))),
        200,
        None,
        "audience",
    ),
    # Time: expiry to the second, and tokens not valid yet.
    Attack(
        "used a second after it expired",
        bearer(lambda k: hs256(HS, claims(exp=int(time.time()) - 1))),
        401,
        EXPIRED,
        "no-leeway",
    ),
    Attack(
        "a second after expiry, within the default 30 s leeway",
        bearer(lambda k: hs256(HS, claims(exp=int(time.time()) - 1))),
        200,
        None,
    ),
    Attack(
        "past the leeway",
        bearer(lambda k: hs256(HS, claims(exp=int(time.time()) - 31))),
        401,
        EXPIRED,
    ),
    Attack(
        "not valid yet",
        bearer(lambda k: hs256(HS, claims(nbf=int(time.time()) + 120))),
        401,
        invalid_token("the token is not valid yet"),
    ),
    Attack(
        "issued in the future",
        bearer(lambda k: hs256(HS, claims(iat=int(time.time()) + 120))),
        401,
        invalid_token("the token is not valid yet"),
    ),
]


class KeyServer(http.server.ThreadingHTTPServer):
    """A local HTTP server that answers every GET with `body` (a JWK Set), counting the hits."""

    hits: list[str]
    body: bytes


class _KeyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, KeyServer)
        self.server.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def key_server(body: bytes) -> Iterator[KeyServer]:
    """A KeyServer on a free port, for the block's duration."""
    server = KeyServer(("127.0.0.1", free_port()), _KeyHandler)
    server.hits, server.body = [], body
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def bait() -> Iterator[KeyServer]:
    """The server the attacks' URLs point at, offering an empty key set; no hit may come."""
    with key_server(b'{"keys": []}') as server:
        yield server


@pytest.fixture(scope="module")
def kit(bait: KeyServer) -> Kit:
    """Keys made for this run: the RSA deployment's, and an attacker's."""
    deployment_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Kit(
        deployment_key=deployment_key,
        attacker_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        public_pem=deployment_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        bait_url=f"http://127.0.0.1:{bait.server_address[1]}",
    )


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_token_attack(
    attack: Attack,
    kit: Kit,
    bait: KeyServer,
    config: dict[str, Any],
    dataset: Dataset,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app({**config, **DEPLOYMENTS[attack.deployment](kit)})
    authorization = attack.authorization(kit)
    headers = {} if authorization is None else {"Authorization": authorization}

    response = app.test_client().get(attack.path, headers=headers)

    assert response.status_code == attack.status, response.get_data(as_text=True)[:300]
    assert response.headers.get("WWW-Authenticate") == attack.challenge
    assert response.headers.get("X-Request-ID")
    if attack.status != 200:
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == attack.status
    body = response.get_data(as_text=True)
    sent = [authorization.partition(" ")[2]] if authorization else []
    assert not leaks_in(body, sent), leaks_in(body, sent)
    assert not leaks_in(log_text(caplog.records), sent)
    assert bait.hits == [], "the service fetched a URL named in a token"


def test_a_token_accepted_before_is_refused_once_expired(
    config: dict[str, Any], dataset: Dataset
) -> None:
    """Whatever the verifier remembers between requests, expiry is judged on every request."""
    client = create_app({**config, "JWT_LEEWAY_SECONDS": "0"}).test_client()
    expires = int(time.time()) + 2
    headers = {"Authorization": f"Bearer {hs256(HS, claims(exp=expires))}"}
    assert client.get("/users/me/encounters", headers=headers).status_code == 200
    time.sleep(max(0.0, expires + 1.1 - time.time()))
    response = client.get("/users/me/encounters", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == EXPIRED
