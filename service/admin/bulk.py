"""Writing many rows fast: executemany in large batches, COPY on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, Table

BATCH_ROWS = 10_000


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
