"""A Core statement's SQL as the driver runs it: compiled once per dialect and `IN` list lengths.

SQLAlchemy's `execute` looks a statement's compiled form up in its cache, expands the `IN` lists
and processes every bound and result value on every call: about 0.1 ms of Python a statement, and
a call per value of every row. psycopg does the same conversions itself (UUIDs, aware UTC
datetimes in a UTC session), so the SQL, compiled once per number of values of each `IN` list,
can go to the driver as it is (`service.db`). What differs: result values are the driver's own
types (an enum's text, not the enum), and bound values reach the driver unprocessed (an aware
datetime is PostgreSQL's to convert; every caller passes aware ones).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Dialect, Select, TextClause
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

# What a request reads with: a Core select, or SQL text.
Statement = Select[Any] | CompoundSelect | TextClause


def run(
    connection: Connection, cursor: Any, statement: Statement, parameters: Mapping[str, Any]
) -> Sequence[Any]:
    """On PostgreSQL, the SQL compiled once (service.driver_sql), run on the driver's cursor.

    SQLAlchemy's `exec_driver_sql` still builds an execution context and a result around the
    driver's rows: half the client CPU of a statement. The driver's own cursor does without;
    the engine's cursor events are fired as SQLAlchemy fires them (statement metrics, anyone
    listening), a failed statement included, and a driver error becomes SQLAlchemy's (a lost
    connection is invalidated with the whole pool, as SQLAlchemy does; `connection_invalidated`
    says so). SQLite keeps `execute`, whose type processing it needs.
    """
    dialect = connection.dialect
    driver = driver_sql(statement, dialect, parameters) if dialect.name == "postgresql" else None
    if driver is None:
        return connection.execute(statement, parameters).all()
    sql, values = driver
    if cursor is None:
        return connection.exec_driver_sql(sql, values).all()
    dispatch = connection.dispatch
    try:
        for listener in dispatch.before_cursor_execute:
            # As SQLAlchemy: each returns the statement and parameters (a `retval` one may
            # rewrite them; SQLAlchemy wraps the others to return what they were given).
            sql, values = listener(connection, cursor, sql, values, None, False)
        cursor.execute(sql, values)
        rows: Sequence[Any] = cursor.fetchall()
        return rows
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, cursor.connection, cursor)
        if lost:
            connection.invalidate(error)
            connection.engine.pool.dispose()
        raise DBAPIError.instance(
            sql,
            values,
            error,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
        ) from error
    finally:
        for listener in dispatch.after_cursor_execute:
            listener(connection, cursor, sql, values, None, False)


def driver_sql(
    statement: Statement, dialect: Dialect, parameters: Mapping[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """The SQL text and the driver's parameters for these values; None when there is none.

    None: a parameter is rendered into the SQL itself (`literal_execute`), so no one text holds
    for every value, and the statement takes `execute`.
    """
    expanding = _expanding(statement, dialect)
    if expanding is None:
        return None
    lengths = tuple((name, len(parameters[name])) for name in expanding)
    sql, constants, expansions = _driver_sql(statement, dialect, lengths)
    values = {**constants, **parameters}
    for name, names in expansions:
        values.update(zip(names, values.pop(name), strict=True))
    return sql, values


@functools.lru_cache(maxsize=256)
def _compiled(statement: Statement, dialect: Dialect) -> SQLCompiler:
    return statement.compile(dialect=dialect)


@functools.lru_cache(maxsize=256)
def _expanding(statement: Statement, dialect: Dialect) -> tuple[str, ...] | None:
    """The names of the statement's expanding (`IN` list) parameters; None: see driver_sql."""
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
