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
from collections.abc import Mapping
from typing import Any

from sqlalchemy import CompoundSelect, Dialect, Select, TextClause
from sqlalchemy.sql.compiler import SQLCompiler

# What a request reads with: a Core select, or SQL text.
Statement = Select[Any] | CompoundSelect | TextClause


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
