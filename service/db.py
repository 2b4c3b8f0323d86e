"""The database engine, and the read-only connection each request uses."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from flask import Flask, current_app, g
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

from service.driver_sql import Statement, run
from service.engines import make_engine, ping_if_idle
from service.routing import ReadRouter, Staleness

__all__ = ["Database", "Statement", "db", "make_engine"]
# A request reads a few hundred rows by index range scans: parallel workers (which the planner
# picks for tables without statistics, right after a bulk load) would fork per statement.
_SERIAL_READS = "SET max_parallel_workers_per_gather = 0"


class Database:
    """One engine per app and per process; one connection per request.

    A request only reads, so its connection runs each statement on its own (autocommit): no
    BEGIN and ROLLBACK round trips around the request's two statements, and no ORM session to
    set up and tear down. Writers (the CLI commands) use `engine`, in transactions of their own.
    With a read replica, requests read there (service.routing) and `engine` stays on the primary.
    On PostgreSQL a request's connection is kept for the process's next request (`_Binding`),
    not handed back to the pool: a checkout and its checkin cost a tenth of a request's CPU.
    """

    def init_app(
        self,
        app: Flask,
        url: str,
        *,
        replica_url: str | None = None,
        prepared_statements: bool = True,
        driver_cursor: bool = True,
        staleness: Staleness | None = None,
    ) -> None:
        """Bind the app to the database at `url` (nothing connects until first use).

        `driver_cursor=False`: PostgreSQL reads keep SQLAlchemy's `exec_driver_sql` (tracing
        needs its execution context).
        """
        binding = _Binding(url, replica_url, prepared_statements, driver_cursor)
        binding.staleness = staleness or Staleness()
        app.extensions["encounters.db"] = binding
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

        On the read replica when there is one and it keeps up: a request never writes.
        """
        return _reads().connection

    def read(
        self, statement: Statement, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Any]:
        """Every row (a tuple) of `statement`, run on the request's connection.

        A pooled connection can be dead without anyone knowing: the database restarted, or a
        proxy dropped it, since its last use. SQLAlchemy then discards it and every other
        connection of the pool, and the read runs again, once, on a new connection: it is safe
        to repeat, and nobody should see a 503 for an outage that is already over. When that
        connection cannot be opened either, the error stands (a 503).
        """
        reads = _reads()  # a connection that cannot be opened is not retried
        try:
            return run(*reads, statement, parameters or {})
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        g.pop("db_reads").connection.close()
        return run(*_reads(), statement, parameters or {})

    def dispose(self) -> None:
        """Close every pooled connection of the current app (primary and replica)."""
        binding: _Binding = current_app.extensions["encounters.db"]
        binding.dispose()


class _Reads(NamedTuple):
    """The current request's connection and the driver's cursor it reads with (`driver_sql.run`)."""

    connection: Connection
    cursor: Any  # None: SQLAlchemy runs every statement (SQLite, or tracing on)


def _reads() -> _Reads:
    reads: _Reads | None = g.get("db_reads")  # one lookup of `g` a read
    if reads is None:
        binding: _Binding = current_app.extensions["encounters.db"]
        reads = g.db_reads = binding.connect()
    return reads


class _Binding:
    def __init__(
        self, url: str, replica_url: str | None, prepared_statements: bool, driver_cursor: bool
    ) -> None:
        self.url, self.replica_url = url, replica_url
        self.prepared_statements = prepared_statements
        self.driver_cursor = driver_cursor
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._replica: Engine | None = None
        self.staleness = Staleness()
        self._reads: ReadRouter | None = None
        self._autocommit: dict[Engine, Engine] = {}
        self.hooks: list[Callable[[list[Engine]], None]] = []
        self._kept: list[_Reads] = []  # what the last request left: one (threads may add a few)

    def engine(self) -> Engine:
        # A pool inherited across fork() would share sockets between workers.
        if self._engine is None or self._pid != os.getpid():
            self._engine = make_engine(self.url, prepared_statements=self.prepared_statements)
            if self.replica_url is not None:
                self._replica = make_engine(
                    self.replica_url, prepared_statements=self.prepared_statements
                )
            engines = [engine for engine in (self._engine, self._replica) if engine is not None]
            self._autocommit = {}  # SQLite's reads: SQLAlchemy's own AUTOCOMMIT, made once
            for engine in engines:
                if engine.dialect.name == "postgresql":
                    event.listen(engine, "checkin", _end_autocommit)
                else:
                    own = engine.execution_options(isolation_level="AUTOCOMMIT")
                    self._autocommit[engine] = own
            for hook in self.hooks:
                hook(engines)
            self._reads = ReadRouter(self._engine, self._replica, self.staleness)
            self._kept = []  # a parent's connection is the parent's (psycopg never closes it here)
            self._pid = os.getpid()
        return self._engine

    def connect(self) -> _Reads:
        self.engine()
        assert self._reads is not None
        engine = self._reads.reader()
        if engine.dialect.name != "postgresql":
            return _Reads(self._autocommit[engine].connect(), None)
        return self._kept_for(engine) or self._checkout(engine)

    def _kept_for(self, engine: Engine) -> _Reads | None:
        """The last request's connection, if it reads where this one must and still answers."""
        try:
            reads = self._kept.pop()  # atomic: with threads, one request at a time gets it
        except IndexError:
            return None
        connection = reads.connection
        try:
            if connection.engine is engine:  # else the router sent reads elsewhere meanwhile
                # As at a checkout from the pool: pinged first when idle for a while.
                ping_if_idle(engine, connection.connection.driver_connection, connection.info)
                return reads
        except DisconnectionError:
            connection.invalidate()
        connection.close()
        return None

    def finish(self, reads: _Reads) -> None:
        """The end of a request's reads: its connection kept for the next request, or given back.

        Kept on PostgreSQL only, with nothing of the request left on it (a read cut short by an
        error may leave a result pending), and when no other connection is kept already.
        """
        connection = reads.connection
        if not self._kept and _idle(connection):
            connection.info["last_used"] = time.monotonic()  # as the pool stamps a checkin
            self._kept.append(reads)
        else:
            connection.close()

    def _checkout(self, engine: Engine) -> _Reads:
        # Autocommit set on the driver's connection, not as SQLAlchemy's isolation level: its
        # setting at checkout and resetting at checkin cost half the checkout. The pool sets it
        # back at checkin (`_end_autocommit`), so that a writer's transactions stay whole.
        connection = engine.connect()
        pooled = connection.connection
        driver: Any = pooled.driver_connection
        try:
            driver.autocommit = True
            cursor = pooled.info.get("read_cursor")
            if cursor is None:
                # Once per pooled connection, on the request path only (the CLI's bulk work
                # may well use parallel workers). The cursor lives as long as the connection:
                # a new one would look up again how to send each type and read each column.
                cursor = pooled.info["read_cursor"] = pooled.cursor()
                cursor.execute(_SERIAL_READS)
        except engine.dialect.loaded_dbapi.Error as error:
            # A connection that dies while it is set up is an outage like any other (a 503).
            connection.invalidate(error)
            connection.close()
            raise DBAPIError.instance(
                _SERIAL_READS,
                None,
                error,
                engine.dialect.loaded_dbapi.Error,
                dialect=engine.dialect,
            ) from error
        return _Reads(connection, cursor if self.driver_cursor else None)

    def dispose(self) -> None:
        while self._kept:
            self._kept.pop().connection.close()
        for engine in (self._engine, self._replica):
            if engine is not None:
                engine.dispose()


def _idle(connection: Connection) -> bool:
    if connection.invalidated or connection.closed or connection.dialect.name != "postgresql":
        return False
    driver: Any = connection.connection.driver_connection
    return bool(driver.info.transaction_status == TransactionStatus.IDLE)


def _end_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # After the pool's rollback; a connection that failed it was discarded (None) already.
    if dbapi_connection is not None and dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


def _close_connection(_exc: BaseException | None) -> None:
    reads: _Reads | None = g.pop("db_reads", None)
    if reads is not None:
        binding: _Binding = current_app.extensions["encounters.db"]
        binding.finish(reads)


db = Database()
