"""The Flask CLI commands: init-db, load-data, demo-data and issue-token."""

from __future__ import annotations

import time
from typing import Any

import click
import jwt
from flask import Flask, current_app
from flask.cli import with_appcontext

from service.config import HMAC_ALGORITHMS, Settings
from service.db import db
from service.migrate import upgrade


def register_commands(app: Flask) -> None:
    """Add the service's commands to `flask --app wsgi`."""
    app.cli.add_command(init_db)
    app.cli.add_command(issue_token)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Migrate the database to the newest schema (idempotent)."""
    upgrade(db.engine)
    click.echo(f"database at {db.engine.url.render_as_string()} is at the newest schema")


@click.command("issue-token")
@with_appcontext
@click.argument("identifier")
@click.option("--role", default="Student", show_default=True, help="Student or StaffMember.")
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1, 366 * 86400))
def issue_token(identifier: str, role: str, ttl: int) -> None:
    """Print a signed token whose subject is IDENTIFIER (HMAC configurations only)."""
    settings: Settings = current_app.extensions["encounters.settings"]
    if settings.jwt_secret is None:
        raise click.UsageError("issue-token needs JWT_SECRET (an HMAC configuration)")
    click.echo(mint_token(settings, identifier, role, ttl))


def mint_token(settings: Settings, subject: str, role: str, ttl: int) -> str:
    """A token this deployment accepts, for local use and tests."""
    assert settings.jwt_secret is not None
    algorithm = settings.jwt_algorithms[0]
    assert algorithm in HMAC_ALGORITHMS
    now = int(time.time())
    claims: dict[str, Any] = {
        settings.jwt_subject_claim: subject,
        settings.jwt_role_claim: role,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    headers = {"typ": settings.jwt_token_type} if settings.jwt_token_type else None
    return jwt.encode(claims, settings.jwt_secret, algorithm=algorithm, headers=headers)
