"""The Flask CLI commands: init-db, load-data, demo-data and issue-token."""

from __future__ import annotations

import io
import os
import stat
import sys
import time
from datetime import UTC, datetime
from typing import BinaryIO

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from service.admin.demo import DemoOptions, DemoRefused, create_demo_network
from service.admin.loading import ImportRejected, load_stream
from service.admin.migrate import upgrade
from service.admin.progress import Progress
from service.config import ConfigError
from service.db import db
from service.directory import DirectoryUnavailable, Role
from service.identifiers import InvalidIdentifier, parse_identifier
from service.tokens import mint_token


def register_commands(app: Flask) -> None:
    """Add the service's commands to `flask --app wsgi`."""
    app.cli.add_command(init_db)
    app.cli.add_command(load_data)
    app.cli.add_command(demo_data)
    app.cli.add_command(issue_token)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Migrate the database to the newest schema (idempotent)."""
    upgrade(db.engine)
    click.echo(f"database at {db.engine.url.render_as_string()} is at the newest schema")


@click.command("load-data")
@with_appcontext
@click.argument("file", type=click.File("rb"))
@click.option("-q", "--quiet", is_flag=True, help="Show no progress (errors and the summary only).")
def load_data(file: BinaryIO, quiet: bool) -> None:
    """Import FILE (JSON, `-` for stdin), upserting by Id: all of it, or nothing if any is bad."""
    _require_schema()
    progress = Progress(sys.stderr, quiet=quiet)
    try:
        summary = load_stream(db.engine, file, progress, _size(file))
    except ImportRejected as error:
        raise click.ClickException(str(error)) from None
    click.echo(summary)


def _size(file: BinaryIO) -> int | None:
    """The size of a regular file (its progress has a percent); None for a pipe."""
    try:
        status = os.fstat(file.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


@click.command("demo-data")
@with_appcontext
@click.option("--centers", default=5, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--students",
    default=200,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="ST-000001 is always a student of C-001 with a current unit.",
)
@click.option(
    "--staff",
    type=click.IntRange(1, 1_000_000),
    help="Staff members; SM-0001 works at C-001.  [default: students/50, at least 1]",
)
@click.option(
    "--days",
    default=14,
    show_default=True,
    type=click.IntRange(1, 366),
    help="Days of encounters from the start day (Sundays closed).",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Same seed, same network.")
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of encounters, from 00:00 UTC.  [default: today]",
)
@click.option("--replace", is_flag=True, help="Delete every row of the five tables first.")
def demo_data(
    centers: int,
    students: int,
    staff: int | None,
    days: int,
    seed: int,
    start: datetime | None,
    replace: bool,
) -> None:
    """Build a synthetic network, the same for the same seed and start day."""
    _require_schema()
    options = DemoOptions(
        centers=centers,
        students=students,
        staff=staff or max(1, students // 50),
        days=days,
        seed=seed,
        start=(start or datetime.now(UTC)).date(),
    )
    began = time.perf_counter()
    try:
        counts = create_demo_network(db.engine, options, replace=replace)
    except DemoRefused as error:
        raise click.ClickException(str(error)) from None
    elapsed = time.perf_counter() - began
    click.echo(
        f"demo network (seed {seed}, {days} days from {options.start}) built in {elapsed:.1f} s: "
        + ", ".join(f"{count:,} {name}" for name, count in counts.items())
    )


def _require_schema() -> None:
    if not inspect(db.engine).has_table("users"):
        raise click.ClickException("the database has no tables: run `flask --app wsgi init-db`")


@click.command("issue-token")
@with_appcontext
@click.argument("identifier")
@click.option(
    "--role",
    help="Student, StaffMember, or any other name on purpose (an unknown role gets a 403)."
    "  [default: the user's role in the database; Student for no such user]",
)
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1, 366 * 86400))
def issue_token(identifier: str, role: str | None, ttl: int) -> None:
    """Print a signed token whose subject is IDENTIFIER (HMAC configurations only)."""
    try:
        settings = current_app.extensions["encounters.settings"].with_token_key()
    except ConfigError as error:
        raise SystemExit(f"encounters: configuration error: {error}") from None
    if settings.jwt_secret is None:
        raise click.UsageError("issue-token needs JWT_SECRET (an HMAC configuration)")
    click.echo(mint_token(settings, identifier, role or _directory_role(identifier), ttl))


def _directory_role(identifier: str) -> str:
    """The role the directory gives IDENTIFIER, or Student (a token for no one is still useful)."""
    resolver = current_app.extensions["encounters.resolver"]
    try:
        user = resolver.resolve([parse_identifier(identifier)])[0]
    except (InvalidIdentifier, DirectoryUnavailable, SQLAlchemyError):
        user = None
    if user is None:
        click.echo(f"no user {identifier!r} in the directory: a Student token", err=True)
        return Role.STUDENT.value
    return str(user.role.value)
