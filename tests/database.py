"""The test databases: SQLite files by default, or the PostgreSQL database TEST_DATABASE_URL names.

PostgreSQL's tables are dropped and migrated once per session, then emptied before every test;
SQLite's migrated file is copied for every test.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from service.admin.migrate import upgrade
from service.db import make_engine
from service.models import Base
from tests.dataset import insert_dataset

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") or None


def backend_name() -> str:
    """'postgresql' when TEST_DATABASE_URL is set, else 'sqlite'."""
    return "postgresql" if POSTGRES_URL else "sqlite"


def create_database_if_missing(url: str) -> None:
    """Create the URL's database through the server's `postgres` database, or stop with one line."""
    target = make_url(url)
    name = target.database or ""
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            found = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not found:
                quoted = connection.dialect.identifier_preparer.quote_identifier(name)
                connection.execute(text(f"CREATE DATABASE {quoted}"))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        pytest.exit(
            f"TEST_DATABASE_URL: could not find or create the database {name!r} ({reason}); "
            f"create it yourself (createdb -h {target.host} -U {target.username} {name}) "
            "or name one that exists",
            returncode=2,
        )
    finally:
        engine.dispose()


def drop_everything(url: str) -> None:
    """Leave the PostgreSQL database at `url` without any table (nor Alembic's version)."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def unmigrated_database(directory: Path) -> str:
    """The URL of a database without any table: a new SQLite file, or PostgreSQL's dropped.

    The next test's PostgreSQL database is only emptied: `migrate` this one again afterwards.
    """
    if POSTGRES_URL:
        drop_everything(POSTGRES_URL)
        return POSTGRES_URL
    return f"sqlite:///{directory / 'unmigrated.db'}"


def migrate(url: str) -> None:
    """Migrate the database at `url` to the newest schema."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def migrated_template(directory: Path) -> str:
    """A database migrated once: a SQLite file in `directory` to copy, or the PostgreSQL URL."""
    if POSTGRES_URL:
        drop_everything(POSTGRES_URL)
        migrate(POSTGRES_URL)
        return POSTGRES_URL
    template = directory / "template.db"
    migrate(f"sqlite:///{template}")
    return str(template)


def empty_database(template: str, directory: Path) -> str:
    """The URL of an empty, migrated database: the template's copy, or PostgreSQL emptied."""
    if POSTGRES_URL:
        engine = make_engine(POSTGRES_URL)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} CASCADE"))
        engine.dispose()
        return POSTGRES_URL
    path = directory / "encounters.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def database_with_dataset(template: str, directory: Path) -> str:
    """A migrated database holding the known dataset, for a server shared by a test module."""
    url = empty_database(template, directory)
    engine = make_engine(url)
    insert_dataset(engine)
    engine.dispose()
    return url


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: for checking that a failed write changed nothing."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in sorted(metadata.tables)
            if name != "alembic_version"
        }


def table_snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, sorted: for checking that a failed write changed nothing."""
    with engine.connect() as connection:
        return {
            table.name: sorted(tuple(map(str, row)) for row in connection.execute(table.select()))
            for table in Base.metadata.sorted_tables
        }


def miscounted_encounters(engine: Engine) -> int:
    """Encounters whose kept count of active bookings is not the count of them."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM encounters e WHERE active_bookings <> (SELECT count(*)"
                    " FROM bookings b WHERE b.encounter_id = e.id AND NOT b.cancelled)"
                )
            ).scalar_one()
        )


def analyzed_tables(engine: Engine) -> set[str]:
    """The tables the planner has statistics for (SQLite: sqlite_stat1)."""
    query = (
        "SELECT DISTINCT tbl FROM sqlite_stat1"
        if engine.dialect.name == "sqlite"
        else "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = 'public'"
    )
    with engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def live_and_dead_rows(engine: Engine, tables: Sequence[str]) -> dict[str, tuple[int, int]]:
    """PostgreSQL's (live, dead) rows of `tables`, once every other session has reported them.

    A session reports its counts when it ends: end the writer's sessions first.
    """
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            rows = connection.execute(
                text("SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables")
            ).all()
        found = {name: (live, dead) for name, live, dead in rows if name in tables}
        if all(found.get(table, (0, 0))[0] for table in tables) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
