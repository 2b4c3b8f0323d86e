"""The fixtures: a fresh app and database per test, the known dataset, and real tokens.

The suite runs on SQLite by default; with TEST_DATABASE_URL it runs on that PostgreSQL database
(tests/database.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from service.app import create_app
from service.db import db, make_engine
from tests import database
from tests.dataset import Dataset, insert_dataset
from tests.leaks import leaks_in, log_text
from tests.tokens import SECRET, Tokens


def pytest_sessionstart(session: pytest.Session) -> None:
    """A TEST_DATABASE_URL whose database does not exist yet gets it created."""
    if database.POSTGRES_URL:
        database.create_database_if_missing(database.POSTGRES_URL)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once per session: a SQLite file to copy, or the PostgreSQL URL."""
    return database.migrated_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> str:
    """An empty, migrated database for this test alone."""
    return database.empty_database(migrated_template, tmp_path)


@pytest.fixture
def config(database_url: str) -> dict[str, Any]:
    """The app configuration of a test; tests may change it before `app` is built."""
    return {
        "DATABASE_URL": database_url,
        "JWT_SECRET": SECRET,
        "JWT_ALGORITHMS": "HS256",
    }


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    """A fresh app on the test's database."""
    application = create_app(config)
    application.config["TESTING"] = True
    yield application
    with application.app_context():
        db.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def engine(app: Flask) -> Iterator[Engine]:
    """A separate engine on the test's database, for arranging and inspecting rows."""
    engine = make_engine(app.extensions["encounters.settings"].database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tokens() -> Tokens:
    """The token minter of the test deployment."""
    return Tokens()


@pytest.fixture
def dataset(engine: Engine) -> Dataset:
    """The known dataset, written to the test's database."""
    return insert_dataset(engine)


@pytest.fixture
def logs_without_secrets(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No log record of the test holds a dataset email, a token or the secret (as sent, unmasked)."""
    caplog.set_level(logging.DEBUG)
    yield
    assert not leaks_in(log_text(caplog.records))
