"""SPEC 7: init-db migrates to the newest schema, idempotently, and it matches the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from service.models import Base


def test_init_db_is_idempotent(app: Any, engine: Engine) -> None:
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
    assert "encounters" in inspect(engine).get_table_names()


def test_the_migrations_match_the_models(app: Any, engine: Engine) -> None:
    app.test_cli_runner().invoke(args=["init-db"])
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_every_lookup_has_its_index(engine: Engine) -> None:
    inspector = inspect(engine)
    users = {tuple(ix["column_names"]) for ix in inspector.get_indexes("users")}
    assert {("email_key",), ("reference_key",)} <= users
    encounters = {tuple(ix["column_names"]) for ix in inspector.get_indexes("encounters")}
    assert ("center_id", "starts_at") in encounters
    assert ("unit_number", "center_id", "starts_at") in encounters
    assert ("unit_number", "starts_at") in encounters
