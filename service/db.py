"""The database engine, and the read-only connection each request uses."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, Dialect, Engine, Row, Select, TextClause, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.sql.compiler import SQLCompiler

from service.routing import Engines, Staleness

CONNECT_TIMEOUT_SECONDS = 3
PING_AFTER_IDLE_SECONDS = 2.0

# What a request reads with: a Core select, or SQL text.
Statement = Select[Any] | TextClause


class Database:
    """One engine per app and per process; one connection per request.

    A request only reads, so its connection runs each statement on its own (autocommit): no
    BEGIN and ROLLBACK round trips around the request's two statements, and no ORM session to
    set up and tear down. Writers (the CLI commands) use `engine`, in transactions of their own.
    With a read replica, requests read there (while it keeps up) and `engine` stays on the
    primary.
    """

    def init_app(
        self,
        app: Flask,
        url: str,
        *,
        replica_url: str | None = None,
        prepared_statements: bool = True,
        staleness: Staleness | None = None,
    ) -> None:
        """Bind the app to the database at `url` (nothing connects until first use)."""
        make = functools.partial(make_engine, prepared_statements=prepared_statements)
        app.extensions["encounters.db"] = Engines(url, replica_url, make, staleness or Staleness())
        app.teardown_appcontext(_close_connection)

    def on_new_engines(self, app: Flask, hook: Callable[[list[Engine]], None]) -> None:
        """Call `hook` with the engines the app makes (primary, replica): first, and per worker."""
        binding: Engines = app.extensions["encounters.db"]
        binding.hooks.append(hook)

    @property
    def engine(self) -> Engine:
        """The current app's engine on the primary, made anew in a forked worker."""
        binding: Engines = current_app.extensions["encounters.db"]
        return binding.engine()

    @property
    def connection(self) -> Connection:
        """The read-only (autocommit) connection of the current request, opened on first use.

        On the read replica when there is one and it keeps up (service.routing): a request
        never writes.
        """
        if "db_connection" not in g:
            binding: Engines = current_app.extensions["encounters.db"]
            g.db_connection = binding.connect()
        connection: Connection = g.db_connection
        return connection

    def read(
        self, statement: Statement, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[*tuple[Any, ...]]]:
        """Every row of `statement`, run on the request's connection.

        A pooled connection can be dead without anyone knowing: the database restarted, or a
        proxy dropped it, since its last use. SQLAlchemy then discards it and every other
        connection of the pool, and the read runs again, once, on a new connection: it is safe
        to repeat, and nobody should see a 503 for an outage that is already over. When that
        connection cannot be opened either, the error stands (a 503).
        """
        connection = self.connection  # a connection that cannot be opened is not retried
        try:
            return _run(connection, statement, parameters or {})
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        g.pop("db_connection").close()
        return _run(self.connection, statement, parameters or {})

    def dispose(self) -> None:
        """Close every pooled connection of the current app (primary and replica)."""
        binding: Engines = current_app.extensions["encounters.db"]
        binding.dispose()


def _run(
    connection: Connection, statement: Statement, parameters: Mapping[str, Any]
) -> Sequence[Row[*tuple[Any, ...]]]:
    """On PostgreSQL, the statement's SQL as compiled once, run through `exec_driver_sql`.

    SQLAlchemy's `execute` looks its compiled form up in the statement cache, expands the `IN`
    lists and processes every bound and result value: about 0.1 ms of Python a statement, and
    a call per value of every row. psycopg does the same conversions itself (UUIDs, aware UTC
    datetimes in a UTC session), so the SQL, compiled once per number of values of each `IN`
    list, goes to the driver as it is. Engine events still fire (statement metrics, SQL spans),
    and errors are SQLAlchemy's (a lost connection is noticed and the pool discarded). What
    differs: result values are the driver's own types (an enum's text, not the enum), and bound
    values reach the driver unprocessed (an aware datetime is PostgreSQL's to convert; every
    caller passes aware ones). SQLite keeps `execute`, whose type processing it needs.
    """
    if connection.dialect.name != "postgresql":
        return connection.execute(statement, parameters).all()
    expanding = _expanding(statement, connection.dialect)
    if expanding is None:
        return connection.execute(statement, parameters).all()
    lengths = tuple((name, len(parameters[name])) for name in expanding)
    sql, constants, expansions = _driver_sql(statement, connection.dialect, lengths)
    values = {**constants, **parameters}
    for name, names in expansions:
        values.update(zip(names, values.pop(name), strict=True))
    return connection.exec_driver_sql(sql, values).all()


@functools.lru_cache(maxsize=256)
def _compiled(statement: Statement, dialect: Dialect) -> SQLCompiler:
    return statement.compile(dialect=dialect)


@functools.lru_cache(maxsize=256)
def _expanding(statement: Statement, dialect: Dialect) -> tuple[str, ...] | None:
    """The names of the statement's expanding (`IN` list) parameters.

    None when a parameter is rendered into the SQL itself (`literal_execute`): no SQL text then
    holds for every value, and the statement takes `execute`.
    """
    compiled = _compiled(statement, dialect)
    if any(bind.literal_execute and not bind.expanding for bind in compiled.binds.values()):
        return None
    return tuple(name for name, bind in compiled.binds.items() if bind.expanding)


@functools.lru_cache(maxsize=256)
def _driver_sql(
    statement: Statement, dialect: Dialect, lengths: tuple[tuple[str, int], ...]
) -> tuple[str, dict[str, Any], tuple[tuple[str, list[str]], ...]]:
    """The SQL for these `IN` list lengths, the constants it binds, and each list's names."""
    compiled = _compiled(statement, dialect)
    sample: dict[str, Any] = {name: None for name, bind in compiled.binds.items() if bind.required}
    sample.update((name, [None] * length) for name, length in lengths)
    state = compiled.construct_expanded_state(sample)
    constants = {
        name: value
        for name, value in state.parameters.items()
        if name in compiled.binds and not compiled.binds[name].required
    }
    expansions = tuple((name, state.parameter_expansion[name]) for name, _ in lengths)
    return state.statement, constants, expansions


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
