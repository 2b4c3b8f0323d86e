"""TEST_DATABASE_URL may name a PostgreSQL database that does not exist yet: the suite creates it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError


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
