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


@pytest.mark.skipif(database.backend_name() != "postgresql", reason="PostgreSQL's copy only")
def test_migration_0006_fills_the_copy_of_existing_encounters(database_url: str) -> None:
    """A database that holds encounters when 0006 is applied: each gets its center's members;
    the revision goes down and up again."""
    from alembic import command
    from sqlalchemy import text

    from service.admin.migrate import alembic_config
    from service.db import make_engine

    engine = make_engine(database_url)
    config = alembic_config(database_url)

    def to(revision: str, step: object = command.upgrade) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)  # type: ignore[operator]

    to("0005")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO centers (id, reference_id, name) VALUES"
                " ('00000000-0000-0000-0000-00000000000c', 'C-1', 'Braga')"
            )
        )
        connection.execute(text(
            "INSERT INTO encounters (id, center_id, unit_number, starts_at, ends_at, is_online,"
            " capacity) VALUES ('00000000-0000-0000-0000-00000000000e',"
            " '00000000-0000-0000-0000-00000000000c', 1, '2030-01-01T10:00Z', '2030-01-01T11:00Z',"
            " false, 3)"
        ))  # fmt: skip
    to("head")
    copied = "SELECT e.center_json_members = c.json_members FROM encounters e JOIN centers c ON c.id = e.center_id"
    with engine.connect() as connection:
        assert connection.execute(text(copied)).scalar_one() is True
    to("0005", command.downgrade)
    to("head")
    with engine.connect() as connection:
        assert connection.execute(text(copied)).scalar_one() is True
    engine.dispose()
