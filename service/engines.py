"""Engines: PostgreSQL made to fail fast and read UTC, SQLite made strict, pings only when idle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

CONNECT_TIMEOUT_SECONDS = 3
PING_AFTER_IDLE_SECONDS = 2.0


def make_engine(url: str, *, prepared_statements: bool = True, **options: Any) -> Engine:
    """An engine for `url`, with SQLite made strict and its folder created.

    `prepared_statements=False`: psycopg never prepares a statement on the server, so the
    engine works through a pooler in transaction mode that cannot hold them (each transaction
    may land on another server connection).
    """
    parsed = make_url(url)
    # Statement parameters (emails, say) must never end up in an exception message or a log.
    options.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_size", 5)
    # An outage should answer 503 within a few seconds, not hold a worker until gunicorn kills it.
    options.setdefault("pool_timeout", 5)
    options.setdefault(
        "connect_args",
        {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # A host that vanishes without closing its sockets is noticed in seconds, not minutes.
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "tcp_user_timeout": 10_000,
            # psycopg's default, 5: prepared from a statement's sixth execution on.
            "prepare_threshold": 5 if prepared_statements else None,
        },
    )
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _utc_session)
    ping_after_idle(engine)
    return engine


def ping_after_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Test a pooled connection before use only when it has been idle for `idle_seconds`.

    `pool_pre_ping` would cost a round trip (two, with its BEGIN) on every checkout. A server
    that restarted or vanished while the pool was idle is still caught here, before any request
    sees it; one lost under load is found dead when a statement runs on it, and `Database.read`
    runs the statement again on a new connection.
    """

    def stamp(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        record.info["last_used"] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # On DisconnectionError the pool discards this connection and checks out another one.
        ping_if_idle(engine, dbapi_connection, record.info, idle_seconds)

    event.listen(engine, "connect", stamp)
    event.listen(engine, "checkin", stamp)
    event.listen(engine, "checkout", check)


def ping_if_idle(
    engine: Engine,
    dbapi_connection: Any,
    info: dict[str, Any],
    idle_seconds: float = PING_AFTER_IDLE_SECONDS,
) -> None:
    """Ping a connection last used (`info["last_used"]`) `idle_seconds` ago or more: a
    DisconnectionError when it does not answer."""
    if time.monotonic() - info.get("last_used", 0.0) < idle_seconds:
        return
    try:
        engine.dialect.do_ping(dbapi_connection)
        dbapi_connection.rollback()  # the ping's transaction, if any, so autocommit can be set
    except Exception as error:
        raise DisconnectionError(type(error).__name__) from error


def _utc_session(connection: Any, _record: Any) -> None:
    # psycopg then returns timestamps with datetime.UTC itself: no conversion per value.
    # TimeZone is one of the settings PgBouncer tracks per client and restores on whichever
    # server connection the client's next transaction gets; a startup `options=-c timezone=UTC`
    # would be refused by PgBouncer ("unsupported startup parameter: options").
    cursor = connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    connection.commit()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.close()
