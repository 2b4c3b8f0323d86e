"""Configuration: read once from the environment (or a mapping), validated, failing fast."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.jwks import DEFAULT_MAX_STALE_SECONDS, MAX_AGE_SECONDS

DEFAULT_DATABASE_URL = "sqlite:///instance/encounters.db"
MIN_SECRET_BYTES = 32

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = frozenset({"ES256", "ES384", "ES512"})
OKP_ALGORITHMS = frozenset({"EdDSA"})
PUBLIC_KEY_ALGORITHMS = RSA_ALGORITHMS | EC_ALGORITHMS | OKP_ALGORITHMS
SUBJECT_KINDS = ("id", "email", "ref")
TRACES_EXPORTERS = frozenset({"otlp", "console"})
OTLP_PROTOCOL = "http/protobuf"


class ConfigError(RuntimeError):
    """The configuration cannot run the service; the message is the one-line reason."""


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads, already parsed and checked."""

    database_url: str = DEFAULT_DATABASE_URL
    # A hot standby for every request's reads (SPEC 10); the CLI keeps to database_url.
    database_replica_url: str | None = None
    # Bounded staleness (SPEC 8): None is `off`, no bound; replica_fallback False is `none`.
    database_replica_max_lag_seconds: int | None = 5
    database_replica_fallback: bool = True
    # off: psycopg never prepares, for a pooler in transaction mode (PgBouncer before 1.22).
    database_prepared_statements: bool = True
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    # How long JWKS keys stay trusted while the endpoint cannot be reached (an outage).
    jwt_jwks_max_stale_seconds: int = DEFAULT_MAX_STALE_SECONDS
    jwt_algorithms: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_token_type: str | None = None
    jwt_leeway_seconds: int = 30
    jwt_subject_claim: str = "sub"
    # The identifier kinds a token's subject may be; `id` alone: GUIDs, which never change hands.
    jwt_subject_kinds: frozenset[str] = frozenset(SUBJECT_KINDS)
    jwt_role_claim: str = "role"
    user_resolver: str = "service.resolvers:database_resolver"
    encounter_window_days: int = 14
    encounter_max_window_days: int = 31
    tracing: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, token_key: bool = True) -> Settings:
        """Build settings from upper-case names (the environment, or a test's mapping).

        With `token_key=False` the token settings are left unchecked: the data commands need only
        the database. Serving and minting tokens check them (`with_token_key`).
        """

        def text(name: str, default: str | None = None) -> str | None:
            value = values.get(name)
            if value is None or str(value).strip() == "":
                return default
            return str(value)

        def integer(name: str, default: int, minimum: int) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                number = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
            if number < minimum:
                raise ConfigError(f"{name} must be at least {minimum}, got {number}")
            return number

        def seconds_or_off(name: str, default: int) -> int | None:
            if (text(name) or "").strip().lower() == "off":
                return None
            try:
                return integer(name, default, 1)
            except ConfigError as error:
                raise ConfigError(f"{error} (or off)") from None

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            raw = text(name, default) or default
            if raw.strip().lower() not in allowed:
                raise ConfigError(f"{name} must be {' or '.join(allowed)}, got {raw!r}")
            return raw.strip().lower()

        def switch(name: str, default: bool) -> bool:
            return choice(name, "on" if default else "off", ("on", "off")) == "on"

        def database(name: str) -> str | None:
            url = text(name)
            if url is not None:
                try:
                    make_url(url)
                except ArgumentError:
                    raise ConfigError(f"{name} is not a database URL") from None
            return url

        def names(name: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in (text(name) or "").split(",") if part.strip())

        subject_kinds = frozenset(names("JWT_SUBJECT_KINDS") or SUBJECT_KINDS)
        if subject_kinds - set(SUBJECT_KINDS):
            raise ConfigError(
                f"JWT_SUBJECT_KINDS has unknown kinds {sorted(subject_kinds - set(SUBJECT_KINDS))}"
                f" (use {','.join(SUBJECT_KINDS)})"
            )
        settings = cls(
            database_url=database("DATABASE_URL") or DEFAULT_DATABASE_URL,
            database_replica_url=database("DATABASE_REPLICA_URL"),
            database_replica_max_lag_seconds=seconds_or_off("DATABASE_REPLICA_MAX_LAG_SECONDS", 5),
            database_replica_fallback=(
                choice("DATABASE_REPLICA_FALLBACK", "primary", ("primary", "none")) == "primary"
            ),
            database_prepared_statements=switch("DATABASE_PREPARED_STATEMENTS", True),
            jwt_secret=text("JWT_SECRET"),
            jwt_public_key=text("JWT_PUBLIC_KEY"),
            jwt_jwks_url=text("JWT_JWKS_URL"),
            jwt_jwks_max_stale_seconds=integer(
                "JWT_JWKS_MAX_STALE_SECONDS", DEFAULT_MAX_STALE_SECONDS, int(MAX_AGE_SECONDS)
            ),
            jwt_algorithms=names("JWT_ALGORITHMS"),
            jwt_issuer=text("JWT_ISSUER"),
            jwt_audience=text("JWT_AUDIENCE"),
            jwt_token_type=text("JWT_TOKEN_TYPE"),
            jwt_leeway_seconds=integer("JWT_LEEWAY_SECONDS", 30, 0),
            jwt_subject_claim=text("JWT_SUBJECT_CLAIM", "sub") or "sub",
            jwt_subject_kinds=subject_kinds,
            jwt_role_claim=text("JWT_ROLE_CLAIM", "role") or "role",
            user_resolver=text("USER_RESOLVER", cls.user_resolver) or cls.user_resolver,
            encounter_window_days=integer("ENCOUNTER_WINDOW_DAYS", 14, 1),
            encounter_max_window_days=integer("ENCOUNTER_MAX_WINDOW_DAYS", 31, 1),
            tracing=tracing_requested(text),
        )
        if settings.encounter_window_days > settings.encounter_max_window_days:
            raise ConfigError("ENCOUNTER_WINDOW_DAYS may not exceed ENCOUNTER_MAX_WINDOW_DAYS")
        return settings.with_token_key() if token_key else settings

    @classmethod
    def from_environment(cls, *, token_key: bool = True) -> Settings:
        """Build settings from the process environment."""
        return cls.from_mapping(os.environ, token_key=token_key)

    def with_token_key(self) -> Settings:
        """Refuse a configuration with no key, a short secret, or mismatched algorithms.

        Returns the settings with their algorithms settled; checking twice is harmless.
        """
        sources = [
            name
            for name, value in (
                ("JWT_SECRET", self.jwt_secret),
                ("JWT_PUBLIC_KEY", self.jwt_public_key),
                ("JWT_JWKS_URL", self.jwt_jwks_url),
            )
            if value
        ]
        if not sources:
            raise ConfigError(
                "no token key configured: set JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL"
            )
        if len(sources) > 1:
            raise ConfigError(f"set only one token key source, not {' and '.join(sources)}")
        if "none" in {a.lower() for a in self.jwt_algorithms}:
            raise ConfigError("JWT_ALGORITHMS may not contain 'none'")
        unknown = set(self.jwt_algorithms) - HMAC_ALGORITHMS - PUBLIC_KEY_ALGORITHMS
        if unknown:
            raise ConfigError(f"JWT_ALGORITHMS has unsupported algorithms: {sorted(unknown)}")
        if self.jwt_secret is not None:
            return self._validated_secret()
        # A public key is an identity provider's: other applications get tokens signed with it.
        missing = [
            name for name in ("JWT_ISSUER", "JWT_AUDIENCE") if not getattr(self, name.lower())
        ]
        if missing:
            raise ConfigError(
                f"{sources[0]} needs {' and '.join(missing)}, or tokens the identity provider "
                "issued for other applications would be accepted"
            )
        if self.jwt_public_key is not None:
            return self._validated_public_key(self.jwt_public_key)
        algorithms = self.jwt_algorithms or ("RS256",)
        if set(algorithms) & HMAC_ALGORITHMS:
            raise ConfigError("JWT_JWKS_URL needs public-key algorithms, not HMAC")
        assert self.jwt_jwks_url is not None
        url = urlsplit(self.jwt_jwks_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError("JWT_JWKS_URL must be an http:// or https:// URL")
        return replace(self, jwt_algorithms=algorithms)

    def _validated_secret(self) -> Settings:
        assert self.jwt_secret is not None
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
        algorithms = self.jwt_algorithms or ("HS256",)
        if not set(algorithms) <= HMAC_ALGORITHMS:
            raise ConfigError("JWT_SECRET needs HMAC algorithms (HS256, HS384, HS512) only")
        return replace(self, jwt_algorithms=algorithms)

    def _validated_public_key(self, pem: str) -> Settings:
        try:
            key = load_pem_public_key(pem.replace("\\n", "\n").encode())
        except ValueError:
            raise ConfigError("JWT_PUBLIC_KEY is not a PEM public key") from None
        if isinstance(key, rsa.RSAPublicKey):
            fitting, default = RSA_ALGORITHMS, "RS256"
        elif isinstance(key, ec.EllipticCurvePublicKey):
            default = {256: "ES256", 384: "ES384", 521: "ES512"}.get(key.curve.key_size, "")
            fitting = frozenset({default}) if default else frozenset()
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            fitting, default = OKP_ALGORITHMS, "EdDSA"
        else:
            raise ConfigError("JWT_PUBLIC_KEY is of a kind no supported algorithm uses")
        algorithms = self.jwt_algorithms or (default,)
        if not set(algorithms) <= fitting:
            raise ConfigError(
                f"JWT_ALGORITHMS {','.join(algorithms)} do not fit JWT_PUBLIC_KEY "
                f"(use {', '.join(sorted(fitting))})"
            )
        return replace(self, jwt_algorithms=algorithms)


def tracing_requested(text: Callable[[str], str | None]) -> bool:
    """Whether OpenTelemetry's own variables ask for traces (docs/tracing.md).

    On when OTEL_TRACES_EXPORTER names an exporter or an OTLP endpoint is set; off when none is,
    when OTEL_TRACES_EXPORTER is `none`, or when OTEL_SDK_DISABLED is `true`.
    """
    if (text("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return False
    raw = text("OTEL_TRACES_EXPORTER") or ""
    exporters = {name.strip().lower() for name in raw.split(",") if name.strip()}
    if exporters == {"none"}:
        return False
    if exporters - TRACES_EXPORTERS:
        raise ConfigError(f"OTEL_TRACES_EXPORTER must be otlp, console or none, got {raw!r}")
    requested = bool(exporters) or any(
        text(name) for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    if requested and "otlp" in (exporters or {"otlp"}):
        # The traces variable wins over the general one, as in the OpenTelemetry SDK.
        for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = (text(name) or "").strip()
            if protocol and protocol != OTLP_PROTOCOL:
                raise ConfigError(f"{name} must be {OTLP_PROTOCOL}, got {protocol!r}")
            if protocol:
                break
    return requested
