"""The staging tables of load-data: the checked records, in temporary tables of the transaction.

Records are appended in batches as the document is read (COPY on PostgreSQL, executemany on
SQLite), so the client holds one batch, never the document. Each row keeps its position in its
list (`pos`), and `label` holds how an error names it when the document spelt an Id differently
from its canonical form (NULL otherwise: the label is rebuilt from the canonical Ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    text,
)

from service.models import UTCDateTime

BATCH_ROWS = 10_000
_metadata = MetaData()


def _stage(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        _metadata,
        Column("pos", Integer, nullable=False),
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


STAGES: dict[str, Table] = {
    "centers": _stage(
        "stage_centers",
        Column("label", String),
        Column("id", Uuid),
        Column("reference_id", String),
        Column("name", String),
    ),
    "users": _stage(
        "stage_users",
        Column("label", String),
        Column("id", Uuid),
        Column("email", String),
        Column("email_key", String),
        Column("reference_id", String),
        Column("reference_key", String),
        Column("role", String),
        Column("center_id", Uuid),
        Column("current_unit", Integer),
    ),
    # A staff member's CenterIds: `pos` is the user's, `position` the center's in the list.
    "staff": _stage(
        "stage_staff",
        Column("position", Integer),
        Column("user_id", Uuid),
        Column("center_id", Uuid),
    ),
    "encounters": _stage(
        "stage_encounters",
        Column("label", String),
        Column("id", Uuid),
        Column("center_id", Uuid),
        Column("unit_number", Integer),
        Column("starts_at", UTCDateTime),
        Column("ends_at", UTCDateTime),
        Column("is_online", Boolean),
        Column("capacity", Integer),
        Column("cancelled", Boolean),
    ),
    "bookings": _stage(
        "stage_bookings",
        Column("label", String),
        Column("encounter_id", Uuid),
        Column("user_id", Uuid),
        Column("cancelled", Boolean),
    ),
}
# What the checks and the merge look up, indexed once the rows are in.
_INDEXES: dict[str, list[tuple[str, ...]]] = {
    "stage_centers": [("id",)],
    "stage_users": [("pos",), ("id",), ("email_key",), ("reference_key",)],
    "stage_staff": [("user_id", "center_id")],
    "stage_encounters": [("id",)],
    "stage_bookings": [("encounter_id", "user_id")],
}


class Stager:
    """Appends rows to the staging tables of one transaction, a batch at a time."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgresql = connection.dialect.name == "postgresql"
        self.counts = dict.fromkeys(STAGES, 0)
        self._pending: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in STAGES}
        for table in STAGES.values():
            if not self.postgresql:  # a connection from the pool may still hold an old one
                connection.execute(text(f"DROP TABLE IF EXISTS temp.{table.name}"))
            table.create(connection)

    def add(self, kind: str, row: tuple[Any, ...]) -> None:
        """Stage one row of `kind` (a key of STAGES): its columns' values, in their order."""
        pending = self._pending[kind]
        pending.append(row)
        if len(pending) >= BATCH_ROWS:
            self._flush(kind)

    def finish(self) -> None:
        """Write what is pending, then index and (PostgreSQL) analyze the staging tables."""
        for kind in STAGES:
            self._flush(kind)
        for name, indexes in _INDEXES.items():
            for number, columns in enumerate(indexes):
                self.connection.execute(
                    text(f"CREATE INDEX ix_{name}_{number} ON {name} ({', '.join(columns)})")
                )
        if self.postgresql:  # temporary tables are never analyzed by autovacuum
            self.connection.execute(text(f"ANALYZE {', '.join(t.name for t in STAGES.values())}"))

    def drop(self) -> None:
        """Drop the staging tables (PostgreSQL drops them at commit by itself)."""
        if not self.postgresql:
            for table in STAGES.values():
                self.connection.execute(text(f"DROP TABLE temp.{table.name}"))

    def _flush(self, kind: str) -> None:
        rows = self._pending[kind]
        if not rows:
            return
        table = STAGES[kind]
        if self.postgresql:
            self._copy(table, rows)
        else:
            self.connection.execute(table.insert(), list(_parameters(table, rows)))
        self.counts[kind] += len(rows)
        rows.clear()

    def _copy(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        # COPY bypasses SQLAlchemy's type processing: values go to psycopg as they are.
        names = [column.name for column in table.columns]
        driver = self.connection.connection.driver_connection
        assert driver is not None
        statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


def _parameters(table: Table, rows: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """SQLAlchemy's parameters for `rows`; its GUID columns take uuid.UUID, not text."""
    names = [column.name for column in table.columns]
    guids = {column.name for column in table.columns if isinstance(column.type, Uuid)}
    for row in rows:
        yield {
            name: uuid.UUID(value) if name in guids and isinstance(value, str) else value
            for name, value in zip(names, row, strict=True)
        }
