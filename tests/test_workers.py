"""gunicorn forks workers: each process must open its own database connections, never share them."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from sqlalchemy import Engine, text

from service.db import db


def test_a_forked_worker_gets_its_own_engine_and_connections(app: Flask) -> None:
    with app.app_context():
        parent_engine = db.engine
        assert db.connection.execute(text("SELECT 1")).scalar_one() == 1
    # Back in the pool (SQLite), or kept for the next request (PostgreSQL): one connection.
    parent_connections = _opened(parent_engine)
    assert parent_connections == 1

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "worker": report, then leave without running any cleanup of the parent's
        answer = b"0"
        try:
            with app.app_context():
                own = db.engine is not parent_engine and _opened(db.engine) == 0
                works = db.connection.execute(text("SELECT 1")).scalar_one() == 1
                answer = b"1" if own and works else b"0"
        finally:
            os.write(write, answer)
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    with app.app_context():
        # The parent still uses its own pool, untouched by the child.
        assert db.engine is parent_engine
        assert db.connection.execute(text("SELECT 1")).scalar_one() == 1
    assert _opened(parent_engine) == parent_connections


def _opened(engine: Engine) -> int:
    """The connections of `engine`'s pool: idle in it, or out of it."""
    pool: Any = engine.pool
    return int(pool.checkedin() + pool.checkedout())
