"""The database engine, and the read-only connection each request uses."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, Executable, Row, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

CONNECT_TIMEOUT_SECONDS = 3
PING_AFTER_IDLE_SECONDS = 2.0


class Database:
    """One engine per app and per process; one connection per request.

    A request only reads, so its connection runs each statement on its own (autocommit): no
    BEGIN and ROLLBACK round trips around the request's two statements, and no ORM session to
    set up and tear down. Writers (the CLI commands) use `engine`, in transactions of their own.
    With a read replica, requests read there and `engine` stays on the primary.
    """

    def init_app(
        self,
        app: Flask,
        url: str,
        *,
        replica_url: str | None = None,
        prepared_statements: bool = True,
    ) -> None:
        """Bind the app to the database at `url` (nothing connects until first use)."""
        app.extensions["encounters.db"] = _Binding(url, replica_url, prepared_statements)
        app.teardown_appcontext(_close_connection)

    def on_new_engines(self, app: Flask, hook: Callable[[list[Engine]], None]) -> None:
        """Call `hook` with the engines the app makes (primary, replica): first, and per worker."""
        binding: _Binding = app.extensions["encounters.db"]
        binding.hooks.append(hook)

    @property
    def engine(self) -> Engine:
        """The current app's engine on the primary, made anew in a forked worker."""
        binding: _Binding = current_app.extensions["encounters.db"]
        return binding.engine()

    @property
    def connection(self) -> Connection:
        """The read-only (autocommit) connection of the current request, opened on first use.

        On the read replica when there is one: a request never writes.
        """
        if "db_connection" not in g:
            binding: _Binding = current_app.extensions["encounters.db"]
            g.db_connection = binding.connect()
        connection: Connection = g.db_connection
        return connection

    def read(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[*tuple[Any, ...]]]:
        """Every row of `statement`, run on the request's connection.

        A pooled connection can be dead without anyone knowing: the database restarted, or a
        proxy dropped it, since its last use. SQLAlchemy then discards it and every other
        connection of the pool, and the read runs again, once, on a new connection: it is safe
        to repeat, and nobody should see a 503 for an outage that is already over. When that
        connection cannot be opened either, the error stands (a 503).
        """
        try:
            return self.connection.execute(statement, parameters).all()
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        g.pop("db_connection").close()
        return self.connection.execute(statement, parameters).all()

    def dispose(self) -> None:
        """Close every pooled connection of the current app (primary and replica)."""
        binding: _Binding = current_app.extensions["encounters.db"]
        binding.dispose()


class _Binding:
    def __init__(self, url: str, replica_url: str | None, prepared_statements: bool) -> None:
        self.url = url
        self.replica_url = replica_url
        self.prepared_statements = prepared_statements
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._replica: Engine | None = None
        self._reader: Engine | None = None
        self.hooks: list[Callable[[list[Engine]], None]] = []

    def engine(self) -> Engine:
        # A pool inherited across fork() would share sockets between workers.
        if self._engine is None or self._pid != os.getpid():
            self._engine = make_engine(self.url, prepared_statements=self.prepared_statements)
            if self.replica_url is not None:
                self._replica = make_engine(
                    self.replica_url, prepared_statements=self.prepared_statements
                )
            for hook in self.hooks:
                hook([engine for engine in (self._engine, self._replica) if engine is not None])
            reads = self._replica or self._engine
            self._reader = reads.execution_options(isolation_level="AUTOCOMMIT")
            self._pid = os.getpid()
        return self._engine

    def connect(self) -> Connection:
        self.engine()
        assert self._reader is not None
        return self._reader.connect()

    def dispose(self) -> None:
        for engine in (self._engine, self._replica):
            if engine is not None:
                engine.dispose()


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
        if time.monotonic() - record.info.get("last_used", 0.0) < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping's transaction, so autocommit can be set
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another one.
            raise DisconnectionError(type(error).__name__) from error

    event.listen(engine, "connect", stamp)
    event.listen(engine, "checkin", stamp)
    event.listen(engine, "checkout", check)


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


def _close_connection(_exc: BaseException | None) -> None:
    connection: Connection | None = g.pop("db_connection", None)
    if connection is not None:
        connection.close()


db = Database()
