"""init-db (docs/data.md) migrates an empty database to the newest schema, idempotently, and it matches
the models."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import Engine, inspect

from service.encounters import stored_members_sql
from service.models import Base, unmodelled
from tests import database


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """Overrides conftest's: a database without any table, for init-db to migrate."""
    url = database.unmigrated_database(tmp_path)
    yield url
    database.migrate(url)  # as the next test expects PostgreSQL's, whatever this one did


def init_db(app: Flask) -> None:
    """`flask --app wsgi init-db`, which must succeed."""
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output


def test_init_db_migrates_an_empty_database_idempotently(app: Flask, engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
    init_db(app)
    tables = set(inspect(engine).get_table_names())
    assert {"centers", "users", "staff_centers", "encounters", "bookings"} <= tables
    init_db(app)
    assert set(inspect(engine).get_table_names()) == tables


def test_the_migrations_match_the_models(app: Flask, engine: Engine) -> None:
    init_db(app)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": unmodelled}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_every_lookup_has_its_index(app: Flask, engine: Engine) -> None:
    init_db(app)
    inspector = inspect(engine)
    users = {tuple(ix["column_names"]) for ix in inspector.get_indexes("users")}
    assert {("email_key",), ("reference_key",)} <= users
    encounters = {tuple(ix["column_names"]) for ix in inspector.get_indexes("encounters")}
    assert ("center_id", "starts_at") in encounters
    assert ("unit_number", "center_id", "starts_at") in encounters
    assert ("unit_number", "starts_at") in encounters


def test_migration_0005_stores_the_members_the_schema_writes() -> None:
    """The generated columns' SQL is frozen in the revision; a schema (or generator) that writes
    otherwise needs a new revision, not a silent difference between old rows and new answers."""
    path = Path(__file__).parent.parent / "migrations/versions/0005_stored_json_members.py"
    spec = importlib.util.spec_from_file_location("revision_0005", path)
    assert spec is not None and spec.loader is not None
    revision = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision)
    for table, frozen in (
        ("encounters", revision.ENCOUNTER_MEMBERS),
        ("centers", revision.CENTER_MEMBERS),
    ):
        assert " ".join(frozen.split()) == " ".join(stored_members_sql(table).split()), table
