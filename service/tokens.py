"""Bearer tokens: verify a JWT, read who it names, mint one (README: "Who may call it")."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from service.config import Settings
from service.jwks import JwksKeys, KeySetUnavailable, StaleSigningKeys, UnknownSigningKey
from service.verified_tokens import Verified, VerifiedTokens

REALM = "encounters"
_TIME_CLAIMS = ("exp", "nbf", "iat")


@dataclass(frozen=True)
class Principal:
    """A verified token's subject and the role names it carries."""

    subject: str
    roles: frozenset[str]


class Unauthenticated(Exception):
    """No usable credentials: a 401. `description` is set when a token was sent and failed."""

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or "a bearer token is required")
        self.description = description

    @property
    def challenge(self) -> str:
        """The `WWW-Authenticate` value (RFC 6750 section 3)."""
        if self.description is None:
            return f'Bearer realm="{REALM}"'
        return (
            f'Bearer realm="{REALM}", error="invalid_token", error_description="{self.description}"'
        )


class TokenVerifier:
    """Verifies tokens with the one key source the settings name; built once per app.

    `clock` (monotonic seconds) paces the JWKS refetches; a test passes its own to skip a minute.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.algorithms = list(settings.jwt_algorithms)
        self._key: Any = None
        self._jwks: JwksKeys | None = None
        self._verified = VerifiedTokens()
        if settings.jwt_secret is not None:
            self._key = settings.jwt_secret.encode()
        elif settings.jwt_public_key is not None:
            self._key = load_pem_public_key(settings.jwt_public_key.replace("\\n", "\n").encode())
        else:
            assert settings.jwt_jwks_url is not None
            self._jwks = JwksKeys(settings.jwt_jwks_url, clock, settings.jwt_jwks_max_stale_seconds)

    def authenticate(self, authorization: str | None) -> Principal:
        """Verify an `Authorization` header value and return the principal it carries."""
        token = bearer_token(authorization)
        remembered = self._verified.get(token)
        if remembered is not None and self._still_signed_by(remembered):
            principal: Principal = remembered.principal
            return principal
        header, key, claims = self._verify(token)
        principal = Principal(subject=self._subject(claims), roles=self._roles(claims))
        kid = header.get("kid") if self._jwks is not None else None
        self._verified.put(token, Verified(principal, claims["exp"], kid, key))
        return principal

    def verify(self, token: str) -> dict[str, Any]:
        """Check the token's header, signature and registered claims; return its claims."""
        return self._verify(token)[2]

    def _still_signed_by(self, remembered: Verified) -> bool:
        """Whether the key that verified a remembered token is still the deployment's key."""
        if self._jwks is None:
            return True
        try:
            return self._jwks.key(remembered.kid or "") is remembered.key
        except (UnknownSigningKey, KeySetUnavailable, StaleSigningKeys):  # verified afresh
            return False

    def _verify(self, token: str) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
            self._check_header(header)
            key = self._signing_key(header)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={
                    "require": ["exp"],
                    "verify_aud": self.settings.jwt_audience is not None,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the token has no '{error.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature does not verify") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated("the token's algorithm is not accepted") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated("the token is malformed") from None
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise Unauthenticated(f"the '{name}' claim must be a number")
        return header, key, claims

    def _check_header(self, header: dict[str, Any]) -> None:
        if header.get("alg") not in self.algorithms:
            raise Unauthenticated("the token's algorithm is not accepted")
        if "crit" in header:
            # RFC 7515 4.1.11: extensions we do not understand make the token unusable.
            raise Unauthenticated("the token has critical header extensions")
        expected = self.settings.jwt_token_type
        if expected is not None and _media_type(header.get("typ")) != _media_type(expected):
            raise Unauthenticated(f"the token's type must be '{expected}'")

    def _signing_key(self, header: dict[str, Any]) -> Any:
        if self._jwks is None:
            return self._key
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no signing key (kid)")
        try:
            # A PyJWK binds its algorithm: a token cannot pick another one for the same key.
            return self._jwks.key(kid)
        except UnknownSigningKey:
            raise Unauthenticated("the token's signing key is unknown") from None
        except StaleSigningKeys:
            raise Unauthenticated(
                "the token's signing key is unconfirmed: the key set has been unreachable for "
                f"over {self.settings.jwt_jwks_max_stale_seconds} s"
            ) from None

    def _subject(self, claims: dict[str, Any]) -> str:
        subject = claims.get(self.settings.jwt_subject_claim)
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthenticated("the token names no subject")
        return subject

    def _roles(self, claims: dict[str, Any]) -> frozenset[str]:
        value = claims.get(self.settings.jwt_role_claim)
        if isinstance(value, str):
            return frozenset({value})
        if isinstance(value, list):
            return frozenset(role for role in value if isinstance(role, str))
        return frozenset()


def mint_token(
    settings: Settings,
    subject: Any,
    role: Any,
    ttl: int = 3600,
    *,
    key: Any = None,
    algorithm: str | None = None,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A token `settings` accept, for `subject` with `role`, valid for `ttl` seconds.

    The one minter of the issue-token command, the tests and the benchmarks: signed with the
    HMAC secret (or `key`, with `algorithm`); `claims` add or replace claims, None removes one.
    """
    now = int(time.time())
    payload: dict[str, Any] = {
        settings.jwt_subject_claim: subject,
        settings.jwt_role_claim: role,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        **claims,
    }
    if settings.jwt_token_type:
        headers = {"typ": settings.jwt_token_type, **(headers or {})}
    signing_key = settings.jwt_secret if key is None else key
    if signing_key is None:
        raise ValueError("a token needs JWT_SECRET (an HMAC configuration) or a key")
    return jwt.encode(
        {name: value for name, value in payload.items() if value is not None},
        signing_key,
        algorithm=algorithm or settings.jwt_algorithms[0],
        headers=headers,
    )


def bearer_token(authorization: str | None) -> str:
    """The token of a `Bearer` Authorization header (scheme case-insensitive)."""
    if not authorization:
        raise Unauthenticated()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated()
    token = token.strip()
    if not token:
        raise Unauthenticated()
    return token


def _media_type(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.lower()
    return value.removeprefix("application/")
