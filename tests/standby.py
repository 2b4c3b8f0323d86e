"""A real hot standby for the tests, and an app built on it.

TEST_REPLICA_DATABASE_URL names a database on a hot standby of TEST_DATABASE_URL's server
(`make scale-check` builds one). `Standby` pauses, delays or cuts its replay the way an operator
or a network would, and puts it back as it was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from service.app import create_app
from service.db import db
from tests.database import POSTGRES_URL

STANDBY_URL = os.environ.get("TEST_REPLICA_DATABASE_URL") or None
needs_standby = pytest.mark.skipif(
    not (STANDBY_URL and POSTGRES_URL),
    reason="needs TEST_REPLICA_DATABASE_URL: a hot standby of TEST_DATABASE_URL (make scale-check)",
)


def serving_app(config: dict[str, Any], **overrides: str) -> Iterator[Flask]:
    """An app of `config` with `overrides`, its pools closed after."""
    application = create_app({**config, **overrides})
    yield application
    with application.app_context():
        db.dispose()


def assert_unavailable(response: Any) -> None:
    """A 503 problem with Retry-After that says nothing of the database's internals."""
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    text_body = response.get_data(as_text=True).lower()
    assert "psycopg" not in text_body and "recovery" not in text_body


def metric(client: Any, name: str, **labels: str) -> float:
    """One sample of the app's /metrics (0 when absent)."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def reads(client: Any, destination: str) -> float:
    """Requests' reads so far from `destination` (replica or primary), as /metrics counts them."""
    return metric(client, "encounters_db_reads_total", destination=destination)


def switches(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages of the switch lines logged so far."""
    return [r.getMessage() for r in caplog.records if r.name == "encounters.replica"]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class Standby:
    """The standby's server, driven as an operator would, and put back by `restore`."""

    def __init__(self, primary_url: str, standby_url: str) -> None:
        self.primary = _libpq(primary_url)
        self.url = _libpq(standby_url)
        self.conninfo = self._one("SHOW primary_conninfo")

    def _one(self, query: str | sql.Composed) -> Any:
        with psycopg.connect(self.url, autocommit=True) as connection:
            row = connection.execute(query).fetchone()
        return row[0] if row else None

    def _set(self, name: str, value: str | None) -> None:
        if value is None:
            statement = sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name))
        else:
            statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(
                sql.Identifier(name), sql.Literal(value)
            )
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(statement)
            connection.execute("SELECT pg_reload_conf()")

    def pause(self) -> None:
        """`pg_wal_replay_pause()`: the standby keeps receiving WAL, and replays none."""
        self._one("SELECT pg_wal_replay_pause()")

    def delay(self, seconds: int) -> None:
        """`recovery_min_apply_delay`: each commit replays `seconds` after it was made."""
        self._set("recovery_min_apply_delay", f"{seconds}s")

    def cut(self) -> None:
        """The WAL stream broken: the standby points at a port where nothing listens."""
        self._set("primary_conninfo", "host=127.0.0.1 port=1 connect_timeout=1")

    def commit_age(self) -> float:
        """Seconds since the commit the standby replayed last."""
        return float(
            self._one(
                "SELECT EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())"
            )
        )

    def restore(self) -> None:
        """Replay resumed, undelayed, streaming from the primary again, and caught up."""
        self._set("recovery_min_apply_delay", None)
        self._set("primary_conninfo", self.conninfo)
        self._one("SELECT pg_wal_replay_resume()")
        self.wait_replayed()

    def wait_replayed(self, timeout: float = 30) -> None:
        """Until the standby has replayed the primary's current WAL position."""
        with psycopg.connect(self.primary, autocommit=True) as primary:
            row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        query = sql.SQL("SELECT pg_last_wal_replay_lsn() >= {}::pg_lsn").format(sql.Literal(row[0]))
        deadline = time.monotonic() + timeout
        while not self._one(query):
            assert time.monotonic() < deadline, f"the standby did not replay {row[0]}"
            time.sleep(0.05)
