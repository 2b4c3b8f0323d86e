"""SPEC 8: the service through a real PgBouncer in transaction mode (Debian's 1.18).

PgBouncer gets one server connection for two apps (two workers' pools), so every transaction
may land on a server connection another client used last. With DATABASE_PREPARED_STATEMENTS=off
every answer is right; with `on` (the control) psycopg's prepared statements collide there.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.scale.pooler import PgBouncer, pgbouncer
from service.app import create_app
from service.db import db
from tests.database import POSTGRES_URL
from tests.dataset import Dataset
from tests.live import free_port
from tests.tokens import Tokens

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL and shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")),
    reason="needs TEST_DATABASE_URL and PgBouncer (apt-get install pgbouncer; make scale-check)",
)
PATH = "/users/me/encounters"


@pytest.fixture
def bouncer() -> Iterator[PgBouncer]:
    """PgBouncer with ONE server connection to the test database, in transaction mode."""
    assert POSTGRES_URL is not None
    target = make_url(POSTGRES_URL)
    libpq = f"host={target.host} port={target.port or 5432} dbname={target.database}"
    with pgbouncer(
        free_port(), {str(target.database): libpq}, 1, 5, user=target.username or "postgres"
    ) as running:
        yield running


def _apps(config: dict[str, Any], url: str, prepared: str, count: int = 2) -> list[Any]:
    return [
        create_app({**config, "DATABASE_URL": url, "DATABASE_PREPARED_STATEMENTS": prepared})
        for _ in range(count)
    ]


def _dispose(apps: list[Any]) -> None:
    for application in apps:
        with application.app_context():
            db.dispose()


def _alternate(apps: list[Any], header: dict[str, str], rounds: int = 8) -> list[Any]:
    clients = [application.test_client() for application in apps]
    return [client.get(PATH, headers=header) for _ in range(rounds) for client in clients]


def test_through_pgbouncer_with_prepared_statements_off(
    config: dict[str, Any], client: Any, dataset: Dataset, tokens: Tokens, bouncer: PgBouncer
) -> None:
    header = tokens.header()
    expected = client.get(PATH, headers=header)  # direct
    assert expected.status_code == 200 and expected.get_json()
    apps = _apps(config, bouncer.url(str(make_url(config["DATABASE_URL"]).database)), "off")
    try:
        answers = _alternate(apps, header)
    finally:
        _dispose(apps)
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert all(a.get_data() == expected.get_data() for a in answers)
    assert all(a.headers["ETag"] == expected.headers["ETag"] for a in answers)


def test_prepared_statements_on_collide_through_pgbouncer(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens, bouncer: PgBouncer
) -> None:
    # The control: what the setting is for (the 5 failing cases of 136).
    apps = _apps(config, bouncer.url(str(make_url(config["DATABASE_URL"]).database)), "on")
    try:
        answers = _alternate(apps, tokens.header())
    finally:
        _dispose(apps)
    assert any(answer.status_code != 200 for answer in answers)


def test_the_utc_session_survives_another_clients_time_zone(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens, bouncer: PgBouncer
) -> None:
    alias = str(make_url(config["DATABASE_URL"]).database)
    (application,) = _apps(config, bouncer.url(alias), "off", count=1)
    other = bouncer.url(alias).replace("postgresql+psycopg://", "postgresql://")
    try:
        with application.app_context():
            db.connection.execute(text("SELECT 1"))  # connected: SET TIME ZONE 'UTC' ran
        with psycopg.connect(other, autocommit=True) as neighbour:
            # The same (only) server connection, now set to another zone by another client.
            neighbour.execute("SET TIME ZONE 'Asia/Tokyo'")
            with application.app_context():
                zone = db.connection.execute(text("SHOW TimeZone")).scalar_one()
            assert neighbour.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)
        assert zone == "UTC"
        response = application.test_client().get(PATH, headers=tokens.header())
        assert response.status_code == 200
        assert all(item["DateTime"].endswith("+00:00") for item in response.get_json())
    finally:
        _dispose([application])
