"""Writing many rows fast: executemany in large batches, COPY on PostgreSQL, upserts by key."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

BATCH_ROWS = 10_000
# Stays under every backend's limit on bound parameters (SQLite before 3.32 allowed 999).
LOOKUP_CHUNK = 900


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """`items` in lists of at most `size`."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def insert_rows(connection: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert `rows` (dicts keyed by column name); PostgreSQL gets COPY, its fastest path."""
    if connection.dialect.name == "postgresql":
        return _copy_rows(connection, table, rows)
    count = 0
    for batch in batches(rows, BATCH_ROWS):
        connection.execute(table.insert(), batch)
        count += len(batch)
    return count


def upsert_rows(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> int:
    """Insert `rows`, or update the row that has the same `keys`, in batches of executemany."""
    insert = _dialect_insert(connection)(table)
    # Only the columns the rows carry: one the database keeps (a count) is never overwritten.
    carried = set().union(*(row.keys() for row in rows))
    changing = {
        column.name: insert.excluded[column.name]
        for column in table.columns
        if column.name not in keys and column.name in carried
    }
    statement = (
        insert.on_conflict_do_update(index_elements=list(keys), set_=changing)
        if changing
        else insert.on_conflict_do_nothing(index_elements=list(keys))
    )
    for batch in batches(rows, BATCH_ROWS):
        connection.execute(statement, batch)
    return len(rows)


def _dialect_insert(connection: Connection) -> Callable[[Table], Any]:
    # ON CONFLICT is dialect syntax; both supported backends spell it the same way.
    dialects = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    try:
        return dialects[connection.dialect.name]
    except KeyError:
        raise RuntimeError(
            f"upserts need PostgreSQL or SQLite, not {connection.dialect.name}"
        ) from None


def _copy_rows(connection: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    rows = itertools.chain([first], iterator)
    # The columns the rows carry: one the database keeps (a count) takes its default.
    names = [column.name for column in table.columns if column.name in first]
    # COPY bypasses SQLAlchemy's type processing: values go to psycopg as they are.
    driver = connection.connection.driver_connection
    assert driver is not None
    count = 0
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])
            count += 1
    return count
