"""Fail-fast configuration (README): a bad one refuses to start, with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.app import create_app
from service.config import ConfigError, Settings
from tests.live import ROOT, free_port
from tests.tokens import PROVIDER

SECRET = "s" * 32


def _pem(private_key: Any) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


RSA_PEM = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PEM = _pem(ec.generate_private_key(ec.SECP256R1()))

REFUSED = [
    ({}, "no token key configured"),
    ({"JWT_ALGORITHMS": "RS256"}, "no token key configured"),
    ({"JWT_SECRET": "s" * 31}, "JWT_SECRET must be at least 32 bytes"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "RS256"}, "JWT_SECRET needs HMAC algorithms"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "HS256,RS256"}, "JWT_SECRET needs HMAC"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "none"}, "may not contain 'none'"),
    ({"JWT_SECRET": SECRET, "JWT_SUBJECT_KINDS": "id,guid"}, "JWT_SUBJECT_KINDS has unknown kinds"),
    ({"JWT_SECRET": SECRET, "JWT_SUBJECT_KINDS": "me"}, "JWT_SUBJECT_KINDS has unknown kinds"),
    # A shared identity provider signs other applications' tokens: both claims must be checked.
    ({"JWT_PUBLIC_KEY": RSA_PEM}, "JWT_PUBLIC_KEY needs JWT_ISSUER and JWT_AUDIENCE"),
    ({"JWT_PUBLIC_KEY": RSA_PEM, "JWT_ISSUER": "https://idp"}, "JWT_PUBLIC_KEY needs JWT_AUDIENCE"),
    ({"JWT_JWKS_URL": "https://idp/jwks", "JWT_AUDIENCE": "api"}, "JWT_JWKS_URL needs JWT_ISSUER,"),
    (
        {**PROVIDER, "JWT_JWKS_URL": "https://idp/jwks", "JWT_JWKS_MAX_STALE_SECONDS": "60"},
        "JWT_JWKS_MAX_STALE_SECONDS must be at least 600",
    ),
    (
        {**PROVIDER, "JWT_PUBLIC_KEY": RSA_PEM, "JWT_ALGORITHMS": "HS256"},
        "do not fit JWT_PUBLIC_KEY",
    ),
    (
        {**PROVIDER, "JWT_PUBLIC_KEY": RSA_PEM, "JWT_ALGORITHMS": "ES256"},
        "do not fit JWT_PUBLIC_KEY",
    ),
    (
        {**PROVIDER, "JWT_PUBLIC_KEY": EC_PEM, "JWT_ALGORITHMS": "RS256"},
        "do not fit JWT_PUBLIC_KEY",
    ),
    ({**PROVIDER, "JWT_PUBLIC_KEY": "not a key"}, "JWT_PUBLIC_KEY is not a PEM public key"),
    (
        {**PROVIDER, "JWT_JWKS_URL": "http://127.0.0.1:18999/jwks", "JWT_ALGORITHMS": "HS256"},
        "not HMAC",
    ),
    (
        {**PROVIDER, "JWT_JWKS_URL": "file:///etc/jwks.json"},
        "JWT_JWKS_URL must be an http:// or https:// URL",
    ),
    (
        {**PROVIDER, "JWT_JWKS_URL": "login.example.com/jwks"},
        "JWT_JWKS_URL must be an http:// or https:// URL",
    ),
    ({"JWT_SECRET": SECRET, "JWT_PUBLIC_KEY": RSA_PEM}, "set only one token key source"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "XS999"}, "unsupported algorithms"),
    ({"JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "soon"}, "JWT_LEEWAY_SECONDS must be a whole"),
    ({"JWT_SECRET": SECRET, "DATABASE_PREPARED_STATEMENTS": "no"}, "must be on or off, got 'no'"),
    ({"JWT_SECRET": SECRET, "DATABASE_PREPARED_STATEMENTS": "0"}, "must be on or off"),
    ({"JWT_SECRET": SECRET, "DATABASE_REPLICA_URL": "replica:5433"}, "is not a database URL"),
    ({"JWT_SECRET": SECRET, "DATABASE_REPLICA_MAX_LAG_SECONDS": "5s"},
     "DATABASE_REPLICA_MAX_LAG_SECONDS must be a whole number, got '5s' (or off)"),
    ({"JWT_SECRET": SECRET, "DATABASE_REPLICA_MAX_LAG_SECONDS": "0"}, "must be at least 1, got 0"),
    ({"JWT_SECRET": SECRET, "DATABASE_REPLICA_FALLBACK": "replica"},
     "DATABASE_REPLICA_FALLBACK must be primary or none, got 'replica'"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "reason"), REFUSED)
def test_bad_configuration_is_refused_with_one_line(values: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app({"DATABASE_URL": "sqlite://", **values})
    message = str(refused.value)
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("values", "algorithms"),
    [
        ({"JWT_SECRET": SECRET}, ("HS256",)),
        ({**PROVIDER, "JWT_PUBLIC_KEY": RSA_PEM}, ("RS256",)),
        ({**PROVIDER, "JWT_PUBLIC_KEY": RSA_PEM, "JWT_ALGORITHMS": "RS256,PS256"}, ("RS256", "PS256")),
        ({**PROVIDER, "JWT_PUBLIC_KEY": EC_PEM}, ("ES256",)),
        # An environment variable often holds a PEM with its line breaks written as \n.
        ({**PROVIDER, "JWT_PUBLIC_KEY": EC_PEM.replace("\n", "\\n")}, ("ES256",)),
        ({**PROVIDER, "JWT_JWKS_URL": "http://127.0.0.1:18999/jwks"}, ("RS256",)),
        ({**PROVIDER, "JWT_JWKS_URL": "http://127.0.0.1:18999/jwks", "JWT_ALGORITHMS": "RS256,ES256"},
         ("RS256", "ES256")),
    ],
)  # fmt: skip
def test_good_configuration_settles_its_algorithms(
    values: dict[str, str], algorithms: tuple[str, ...]
) -> None:
    assert Settings.from_mapping(values).jwt_algorithms == algorithms


@pytest.mark.parametrize(
    ("values", "replica", "prepared", "max_lag", "fallback"),
    [
        ({}, None, True, 5, True),
        ({"DATABASE_PREPARED_STATEMENTS": "on"}, None, True, 5, True),
        ({"DATABASE_PREPARED_STATEMENTS": " OFF "}, None, False, 5, True),
        ({"DATABASE_REPLICA_URL": "postgresql+psycopg://ro@standby/db"}, "postgresql+psycopg://ro@standby/db", True, 5, True),
        ({"DATABASE_REPLICA_MAX_LAG_SECONDS": "30"}, None, True, 30, True),
        ({"DATABASE_REPLICA_MAX_LAG_SECONDS": " Off "}, None, True, None, True),
        ({"DATABASE_REPLICA_FALLBACK": "none"}, None, True, 5, False),
        ({"DATABASE_REPLICA_FALLBACK": "PRIMARY"}, None, True, 5, True),
    ],
)  # fmt: skip
def test_scale_out_settings(
    values: dict[str, str],
    replica: str | None,
    prepared: bool,
    max_lag: int | None,
    fallback: bool,
) -> None:
    settings = Settings.from_mapping({"JWT_SECRET": SECRET, **values})
    assert settings.database_replica_url == replica
    assert settings.database_prepared_statements is prepared
    assert settings.database_replica_max_lag_seconds == max_lag
    assert settings.database_replica_fallback is fallback


def _run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("JWT_", "PROMETHEUS_", "WEB_CONCURRENCY", "DATABASE_"))
    }
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**clean, "BIND": f"127.0.0.1:{free_port()}", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


GUNICORN_REFUSALS = [
    ({}, "no token key configured"),
    ({"JWT_SECRET": "too-short"}, "JWT_SECRET must be at least 32 bytes long"),
    (
        {**PROVIDER, "JWT_PUBLIC_KEY": RSA_PEM, "JWT_ALGORITHMS": "ES256"},
        "do not fit JWT_PUBLIC_KEY",
    ),
    # (gunicorn itself reads WEB_CONCURRENCY first, and fails with a traceback on a non-number.)
    ({"JWT_SECRET": SECRET, "WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY must be a whole number"),
    ({"JWT_SECRET": SECRET, "GUNICORN_TIMEOUT": "soon"}, "GUNICORN_TIMEOUT must be a whole"),
    ({"JWT_SECRET": SECRET, "DATABASE_PREPARED_STATEMENTS": "maybe"}, "must be on or off"),
    ({"JWT_SECRET": SECRET, "DATABASE_REPLICA_FALLBACK": "no"}, "must be primary or none"),
]


@pytest.mark.parametrize(("environment", "reason"), GUNICORN_REFUSALS)
def test_gunicorn_refuses_to_start_with_one_line(environment: dict[str, str], reason: str) -> None:
    finished = _run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], environment
    )
    assert finished.returncode != 0
    lines = (finished.stdout + finished.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("encounters: configuration error: ")
    assert reason in lines[0]


def test_flask_run_refuses_to_serve_without_a_token_key() -> None:
    command = ["run", "--port", str(free_port()), "--no-reload"]
    finished = _run([sys.executable, "-m", "flask", "--app", "wsgi", *command], {})
    assert finished.returncode != 0
    assert (
        "encounters: configuration error: no token key configured: "
        "set JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL"
    ) in finished.stderr.strip().splitlines()


def test_issue_token_refuses_an_unusable_key_with_one_line() -> None:
    finished = _run([sys.executable, "-m", "flask", "--app", "wsgi", "issue-token", "x"], {})
    assert finished.returncode != 0
    lines = finished.stderr.strip().splitlines()
    assert lines == [
        "encounters: configuration error: no token key configured: "
        "set JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL"
    ]


@pytest.mark.parametrize("token_settings", [{}, {"JWT_SECRET": "too-short"}])
def test_data_commands_need_only_the_database_settings(
    token_settings: dict[str, str], tmp_path: Any
) -> None:
    environment = {"DATABASE_URL": f"sqlite:///{tmp_path}/data.db", **token_settings}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for command in (["init-db"], ["demo-data", "--students", "2"], ["openapi", "write", "-"]):
        finished = _run(flask + command, environment)
        assert finished.returncode == 0, finished.stderr


def test_an_app_built_for_the_data_commands_serves_nothing() -> None:
    app = create_app({"DATABASE_URL": "sqlite://"}, token_key=False)
    response = app.test_client().get("/users/me/encounters")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
