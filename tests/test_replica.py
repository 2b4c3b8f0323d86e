"""SPEC 8 and 10: DATABASE_REPLICA_URL takes every request's reads; the CLI keeps the primary.

A replica that cancels a statement on a recovery conflict, or that is down with
DATABASE_REPLICA_FALLBACK=none, is a 503 with Retry-After (bounded staleness and the fallback to
the primary: tests/test_staleness.py, tests/test_fallback.py). With TEST_REPLICA_DATABASE_URL
naming a real hot standby of TEST_DATABASE_URL's server (`make scale-check` builds one), the reads
are shown to reach it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from service.admin.migrate import upgrade
from service.db import db, make_engine
from tests.database import POSTGRES_URL
from tests.dataset import Dataset
from tests.live import refused_port
from tests.standby import STANDBY_URL, assert_unavailable, needs_standby, serving_app
from tests.tokens import Tokens

PATH = "/users/me/encounters"
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs TEST_DATABASE_URL: SQLite has no server to raise SQLSTATEs"
)


@pytest.fixture
def empty_primary(tmp_path: Path) -> str:
    """A migrated database with no rows: what the primary holds before the replica catches up."""
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_request_reads_and_readiness_use_the_replica(
    config: dict[str, Any], empty_primary: str, dataset: Dataset, tokens: Tokens
) -> None:
    # The rows are only in the "replica" (the test database); the primary is empty.
    # The "replica" is no standby (on PostgreSQL it is not in recovery): no bound keeps the reads
    # there, where a bound would send them to the primary (tests/test_fallback.py).
    for application in serving_app(
        config,
        DATABASE_URL=empty_primary,
        DATABASE_REPLICA_URL=config["DATABASE_URL"],
        DATABASE_REPLICA_MAX_LAG_SECONDS="off",
    ):
        client = application.test_client()
        response = client.get(PATH, headers=tokens.header("ST-000123"))
        assert response.status_code == 200
        assert str(dataset["lis_booked"]) in {e["Id"] for e in response.get_json()}
    # With the primary down, requests and readiness still answer from the replica alone (and
    # a replica that is down, with no fallback, is not ready: the test after this one).
    with refused_port() as port:
        down = f"postgresql+psycopg://postgres@127.0.0.1:{port}/encounters"
        for application in serving_app(
            config,
            DATABASE_URL=down,
            DATABASE_REPLICA_URL=config["DATABASE_URL"],
            DATABASE_REPLICA_MAX_LAG_SECONDS="off",
        ):
            client = application.test_client()
            assert client.get("/health/ready").status_code == 200
            assert client.get(PATH, headers=tokens.header("ST-000123")).status_code == 200
    # The same deployment without the replica reads the empty primary: the caller is unknown.
    for application in serving_app(config, DATABASE_URL=empty_primary):
        assert application.test_client().get(PATH, headers=tokens.header()).status_code == 403


def test_a_replica_that_is_down_without_fallback_is_a_503_and_not_ready(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens
) -> None:
    with refused_port() as port:
        down = f"postgresql+psycopg://postgres@127.0.0.1:{port}/encounters"
        for application in serving_app(
            config, DATABASE_REPLICA_URL=down, DATABASE_REPLICA_FALLBACK="none"
        ):
            client = application.test_client()
            assert_unavailable(client.get(PATH, headers=tokens.header()))
            assert_unavailable(client.get("/health/ready"))
            assert client.get("/health/live").status_code == 200


def test_the_cli_uses_the_primary_whatever_the_replica(
    config: dict[str, Any], empty_primary: str
) -> None:
    with refused_port() as port:
        down = f"postgresql+psycopg://postgres@127.0.0.1:{port}/encounters"
        for application in serving_app(
            config, DATABASE_URL=empty_primary, DATABASE_REPLICA_URL=down
        ):
            result = application.test_cli_runner().invoke(args=["init-db"])
            assert result.exit_code == 0, result.output
            assert "primary.db" in result.output
            result = application.test_cli_runner().invoke(args=["demo-data", "--students", "3"])
            assert result.exit_code == 0, result.output
    engine = make_engine(empty_primary)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() > 0
    engine.dispose()


@pytest.fixture
def conflicting_schema(engine: Engine) -> Iterator[str]:
    """A schema whose `users` raises what a hot standby raises on a recovery conflict.

    The service's own statement runs on the server and fails there with the standby's SQLSTATE
    and message; only the cause (a replayed VACUUM or lock) is not staged.
    """
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS recovery_conflict CASCADE"))
        connection.execute(text("CREATE SCHEMA recovery_conflict"))
        connection.execute(
            text(
                "CREATE FUNCTION recovery_conflict.cancel(code text) RETURNS boolean"
                " LANGUAGE plpgsql VOLATILE AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = code,"
                " MESSAGE = 'canceling statement due to conflict with recovery'; END $$"
            )
        )
    yield "recovery_conflict"
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA recovery_conflict CASCADE"))


@needs_postgres
@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_recovery_conflict_on_the_replica_is_a_503(
    config: dict[str, Any],
    dataset: Dataset,
    tokens: Tokens,
    engine: Engine,
    conflicting_schema: str,
    sqlstate: str,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE OR REPLACE VIEW {conflicting_schema}.users AS SELECT * FROM public.users"
                f" WHERE {conflicting_schema}.cancel('{sqlstate}')"
            )
        )
    replica = f"{config['DATABASE_URL']}?options=-csearch_path%3D{conflicting_schema},public"
    # No bound: the "replica" is the primary's server, not in recovery, and must stay the reader.
    for application in serving_app(
        config, DATABASE_REPLICA_URL=replica, DATABASE_REPLICA_MAX_LAG_SECONDS="off"
    ):
        client = application.test_client()
        assert_unavailable(client.get(PATH, headers=tokens.header()))
    # The same server without the conflict answers: the 503 came from the conflict.
    for application in serving_app(
        config, DATABASE_REPLICA_URL=config["DATABASE_URL"], DATABASE_REPLICA_MAX_LAG_SECONDS="off"
    ):
        assert application.test_client().get(PATH, headers=tokens.header()).status_code == 200


@needs_postgres
@pytest.mark.parametrize(("setting", "prepared"), [("on", True), ("off", False)])
def test_prepared_statements_follow_the_setting(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens, setting: str, prepared: bool
) -> None:
    for application in serving_app(config, DATABASE_PREPARED_STATEMENTS=setting):
        client = application.test_client()
        header = tokens.header()
        for _ in range(8):  # psycopg prepares from the sixth execution on (its threshold, 5)
            assert client.get(PATH, headers=header).status_code == 200
        with application.app_context():
            # One worker, one request at a time: the pool's one connection served them all.
            count = db.connection.execute(
                text("SELECT count(*) FROM pg_prepared_statements")
            ).scalar_one()
        assert (count > 0) is prepared


@needs_standby
def test_reads_reach_a_real_hot_standby(config: dict[str, Any], tokens: Tokens) -> None:
    for application in serving_app(config, DATABASE_REPLICA_URL=STANDBY_URL or ""):
        assert application.test_client().get("/health/ready").status_code == 200
        with application.app_context():
            assert db.connection.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
            with db.engine.connect() as primary:
                assert not primary.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
