"""`db.read`: on PostgreSQL the SQL compiled once goes to the driver; the rows are SQLAlchemy's own.

On PostgreSQL a read gives what `Connection.execute` gives for the same statement: the same
rows, values of the same types, for every length of an `IN` list (each length has its own
compiled SQL), with constants the statement binds itself, and for SQL text. On SQLite `db.read`
is `execute` itself, so those comparisons are skipped there (they would compare execute with
itself); what both backends run is a read checked against the dataset.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Uuid, bindparam, event, literal, select, text
from sqlalchemy.exc import DBAPIError

from service.db import Statement, db
from service.engines import PING_AFTER_IDLE_SECONDS
from service.models import Center, Encounter
from tests.database import POSTGRES_URL, backend_name
from tests.dataset import BASE, CENTERS, ENCOUNTERS, Dataset

# Applied to each comparison with `execute`: SQLite has no driver path to compare.
driver_path = pytest.mark.skipif(
    POSTGRES_URL is None,
    reason="db.read's driver path is PostgreSQL's; on SQLite it is execute, compared with itself",
)


def _both(app: Flask, statement: Statement, parameters: dict[str, Any]) -> tuple[Any, Any]:
    with app.app_context():
        fast = [tuple(row) for row in db.read(statement, parameters)]
        core = [tuple(row) for row in db.connection.execute(statement, parameters).all()]
    return fast, core


_IN_CENTERS = (
    select(Encounter.id, Encounter.starts_at, Center.name, literal("constant").label("c"))
    .join(Center, Center.id == Encounter.center_id)
    .where(Encounter.center_id.in_(bindparam("centers", expanding=True)))
    .order_by(Encounter.starts_at, Encounter.id)
)


@pytest.mark.parametrize("names", [["lisbon"], ["lisbon", "porto"], []])
def test_a_read_gives_the_datasets_rows_in_order(
    app: Flask, dataset: Dataset, names: list[str]
) -> None:
    """On both backends: the encounters of the centers named, by start then id, with their types."""
    with app.app_context():
        rows = db.read(_IN_CENTERS, {"centers": [dataset[name] for name in names]})
    expected = sorted(
        (BASE + timedelta(days=row.days), dataset[name])
        for name, row in ENCOUNTERS.items()
        if row.center in names
    )
    assert [(row[1], row[0]) for row in rows] == expected
    assert all(row[3] == "constant" and row[1].tzinfo is not None for row in rows)


@driver_path
@pytest.mark.parametrize("names", [["lisbon"], ["lisbon", "porto"], [], ["porto"], ["lisbon"]])
def test_an_in_list_of_any_length_reads_what_execute_reads(
    app: Flask, dataset: Dataset, names: list[str]
) -> None:
    fast, core = _both(app, _IN_CENTERS, {"centers": [dataset[name] for name in names]})
    assert fast == core
    assert bool(fast) == bool(names)
    for fast_row, core_row in zip(fast, core, strict=True):
        assert [type(value) for value in fast_row] == [type(value) for value in core_row]
    assert {row[3] for row in fast} <= {"constant"}


@driver_path
def test_lengths_met_in_turn_each_keep_their_own_sql(app: Flask, dataset: Dataset) -> None:
    one, two = [dataset["lisbon"]], [dataset["lisbon"], dataset["porto"]]
    for centers in (one, two, one, two):
        fast, core = _both(app, _IN_CENTERS, {"centers": centers})
        assert fast == core and fast


@driver_path
def test_sql_text_with_a_parameter(app: Flask, dataset: Dataset) -> None:
    statement = text("SELECT name FROM centers WHERE id = :center").bindparams(
        bindparam("center", type_=Uuid)
    )
    fast, core = _both(app, statement, {"center": dataset["lisbon"]})
    assert fast == core and len(fast) == 1


@driver_path
def test_a_value_rendered_into_the_sql_takes_execute(app: Flask, dataset: Dataset) -> None:
    statement = select(Center.name).where(Center.id == bindparam("center", literal_execute=True))
    for name in ("lisbon", "porto"):
        fast, core = _both(app, statement, {"center": dataset[name]})
        assert fast == core and len(fast) == 1


def test_a_failing_read_is_sqlalchemys_error_without_its_values(
    app: Flask, dataset: Dataset
) -> None:
    statement = text("SELECT no_such_column FROM centers WHERE name <> :secret")
    with app.app_context():
        with pytest.raises(DBAPIError) as raised:
            db.read(statement, {"secret": "do-not-show-me"})
        assert not raised.value.connection_invalidated
        assert "do-not-show-me" not in str(raised.value)
        assert db.read(text("SELECT count(*) FROM centers"))[0][0] == len(CENTERS)


@pytest.mark.skipif(backend_name() != "postgresql", reason="PostgreSQL's planner setting")
def test_a_request_never_plans_parallel_workers(app: Flask) -> None:
    """A table without statistics (right after a bulk load) must not make a read fork workers."""
    with app.app_context():
        setting = db.read(text("SHOW max_parallel_workers_per_gather"))
    assert setting[0][0] == "0"


@pytest.mark.skipif(backend_name() != "postgresql", reason="PostgreSQL's transactions")
def test_each_read_is_a_transaction_of_its_own(app: Flask) -> None:
    """A request holds no transaction open across its reads (no BEGIN, no ROLLBACK either)."""
    timestamps = text("SELECT transaction_timestamp() = statement_timestamp()")
    with app.app_context():
        db.read(text("SELECT 1"))
        assert db.read(timestamps)[0][0] is True


@pytest.mark.skipif(backend_name() != "postgresql", reason="PostgreSQL's transactions")
def test_a_writer_on_a_connection_requests_used_keeps_its_transactions(app: Flask) -> None:
    """Requests read in autocommit; the pool hands the same connection to a writer without it."""
    with app.app_context():
        db.read(text("SELECT 1"))
        used = db.connection.connection.driver_connection
        with app.app_context():  # a request of another thread meanwhile, on a second connection
            db.read(text("SELECT 1"))
    # That one is kept for the next request; the first one went back to the pool.
    with app.app_context(), db.engine.connect() as writer:
        assert writer.connection.driver_connection is used  # the only pooled connection
        writer.execute(text("CREATE TEMPORARY TABLE written (n int)"))
        writer.rollback()
        assert writer.execute(text("SELECT to_regclass('written')")).scalar_one() is None
    with app.app_context():
        assert db.read(text("SELECT transaction_timestamp() = statement_timestamp()"))[0][0]


def test_a_listener_may_rewrite_the_statement_as_sqlalchemy_allows(app: Flask) -> None:
    """`before_cursor_execute` with `retval=True` rewrites what runs, on the driver path too."""

    def rewrite(*args: Any) -> tuple[str, Any]:
        statement, parameters = args[2], args[3]
        return statement.replace("41", "42"), parameters

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", rewrite, retval=True)
        try:
            assert db.read(text("SELECT 41"))[0][0] == 42
        finally:
            event.remove(engine, "before_cursor_execute", rewrite)


@pytest.mark.skipif(backend_name() != "postgresql", reason="PostgreSQL's connections are kept")
def test_a_requests_connection_serves_the_next_request_without_the_pool(app: Flask) -> None:
    checkouts: list[object] = []

    def checked_out(dbapi_connection: object, *_args: object) -> None:
        checkouts.append(dbapi_connection)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "checkout", checked_out)
    try:
        with app.app_context():
            db.read(text("SELECT 1"))
            first = db.connection.connection.driver_connection
            with app.app_context():  # two requests at once (threads): two connections
                db.read(text("SELECT 1"))
                second = db.connection.connection.driver_connection
        assert second is not first
        for _ in range(3):
            with app.app_context():
                db.read(text("SELECT 1"))
                # The connection the last request left (the inner one), not one from the pool.
                assert db.connection.connection.driver_connection is second
    finally:
        event.remove(engine, "checkout", checked_out)
    assert checkouts == [first, second]


@pytest.mark.skipif(backend_name() != "postgresql", reason="PostgreSQL's connections are kept")
def test_a_connection_left_in_a_transaction_is_not_kept(app: Flask) -> None:
    """A request that leaves something open on its connection does not pass it on as it is."""
    with app.app_context():
        db.connection.exec_driver_sql("BEGIN")  # a transaction the request never ended
        db.read(text("SELECT 1"))
    with app.app_context():
        # Each statement on its own again: the pool rolled the transaction back at checkin.
        assert db.read(text("SELECT transaction_timestamp() = statement_timestamp()"))[0][0]


@pytest.mark.skipif(backend_name() != "postgresql", reason="PostgreSQL's connections are kept")
def test_a_kept_connection_that_died_while_idle_is_replaced_before_the_read(app: Flask) -> None:
    """Idle 2 s or more, the kept connection is pinged first, as the pool pings at checkout: a
    dead one is replaced before the read, which runs once (not failed first, then retried)."""
    statements: list[str] = []

    def executed(*args: Any) -> None:
        statements.append(args[2])

    with app.app_context():
        engine = db.engine
        pid = db.read(text("SELECT pg_backend_pid()"))[0][0]
    with engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
    time.sleep(PING_AFTER_IDLE_SECONDS + 0.1)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        with app.app_context():
            assert db.read(text("SELECT pg_backend_pid()"))[0][0] != pid
    finally:
        event.remove(engine, "before_cursor_execute", executed)
    assert statements == ["SELECT pg_backend_pid()"]  # once: not failed on the dead connection
