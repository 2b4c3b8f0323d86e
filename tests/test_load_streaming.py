"""load-data as a stream (SPEC 7): the same tables as before, ready to serve, progress, and all or
nothing even when killed; the refusals of documents that used to crash the command."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from bench.world import write_world
from service.admin import merge
from service.admin import progress as progress_module
from service.admin.progress import Progress
from service.db import db
from tests.database import (
    analyzed_tables,
    backend_name,
    live_and_dead_rows,
    miscounted_encounters,
    table_snapshot,
)
from tests.dataset import Dataset, insert_dataset
from tests.reference_loader import reference_load
from tests.test_load_data import at, gid, load, valid_document

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("centers", "users", "staff_centers", "encounters", "bookings")


def refusal(app: Flask, tmp_path: Path, content: str) -> str:
    """load-data of `content` (text), which must fail; its stderr."""
    result = load(app, tmp_path, content)
    assert result.exit_code == 1, result.output
    return result.stderr


def test_consistency_problems_are_listed_in_document_order_up_to_twenty(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    document = valid_document()
    # Bookings first in the text, then 25 of them naming nothing, then a duplicate center.
    document["bookings"] = [
        {"EncounterId": gid(f"none-{n}"), "UserId": gid("lia")} for n in range(25)
    ]
    document["centers"].append(dict(document["centers"][0]))
    content = json.dumps({"bookings": document.pop("bookings"), **document})

    stderr = refusal(app, tmp_path, content).splitlines()

    assert stderr[0] == "Error: nothing was written; 26 problems:"
    assert stderr[1] == f"  centers[2] (Id {gid('alfama')}): Id: Same Id as centers[0]."
    assert stderr[2].startswith(
        f"  bookings[0] (EncounterId {gid('none-0')}, UserId {gid('lia')}): "
    )
    assert stderr[20].startswith("  bookings[18] ")
    assert stderr[21:] == ["  and 6 more"]


def test_a_record_is_named_as_the_document_spells_it(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    document = valid_document()
    document["encounters"][0]["CenterId"] = "{" + gid("nowhere").upper() + "}"

    stderr = refusal(app, tmp_path, json.dumps(document))

    assert f"encounters[0] (Id {gid('alfama-2')}): CenterId: No center with this Id" in stderr
    document["encounters"][0]["Id"] = gid("alfama-2").replace("-", "").upper()
    stderr = refusal(app, tmp_path, json.dumps(document))
    assert f"encounters[0] (Id {gid('alfama-2').replace('-', '').upper()}): CenterId:" in stderr


def varied_documents(dataset: Dataset) -> list[dict[str, Any]]:
    """Documents that exercise every path of the write: inserts, updates, swaps, GUID spellings."""
    first = valid_document()
    first["users"][0]["Id"] = gid("lia").upper()
    first["encounters"][1]["Id"] = "{" + gid("braga-online") + "}"
    first["bookings"][1]["UserId"] = gid("tom").replace("-", "")
    first["bookings"].append({"EncounterId": str(dataset["lis_booked"]), "UserId": gid("tom"),
                              "Cancelled": True})  # fmt: skip
    buffer = io.StringIO()
    write_world(buffer, scale=0.002, tag="w")
    world = json.loads(buffer.getvalue())
    second = valid_document()
    second["users"][0]["Email"], second["users"][1]["Email"] = "tom@example.org", "lia@example.org"
    second["users"][2]["CenterIds"] = [gid("braga"), gid("alfama")]
    second["users"][1] |= {"Role": "StaffMember", "CenterIds": [gid("braga")], "CenterId": None,
                           "CurrentUnit": None}  # fmt: skip
    second["encounters"][0] |= {"Capacity": 3, "DateTime": at(1, 30, 5), "Cancelled": True}
    second["bookings"] = [{"EncounterId": gid("alfama-2"), "UserId": gid("lia"), "Cancelled": True},
                          {"EncounterId": gid("alfama-3"), "UserId": gid("lia")}]  # fmt: skip
    return [first, world, second, first]


def _reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(TABLES):
            connection.execute(text(f"DELETE FROM {table}"))
    insert_dataset(engine)


def test_streamed_documents_give_the_tables_the_old_loader_gave(
    app: Flask, engine: Engine, dataset: Dataset, tmp_path: Path
) -> None:
    documents = varied_documents(dataset)
    for document in documents:
        reference_load(engine, json.dumps(document))
    expected = table_snapshot(engine)
    _reset(engine)

    for document in documents:
        result = load(app, tmp_path, document)
        assert result.exit_code == 0, result.output

    assert table_snapshot(engine) == expected
    assert len(expected["bookings"]) > 100


def test_a_load_leaves_every_table_analyzed_and_without_dead_rows(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "world.json"
    with open(path, "w", encoding="utf-8") as out:
        write_world(out, scale=0.005)

    result = app.test_cli_runner().invoke(args=["load-data", "-q", str(path)])

    assert result.exit_code == 0, result.output
    assert set(TABLES) <= analyzed_tables(engine)
    assert miscounted_encounters(engine) == 0
    if backend_name() == "postgresql":
        with app.app_context():
            db.dispose()  # the loader's session ends, and reports its counts
        rows = live_and_dead_rows(engine, TABLES)
        assert all(live > 0 and dead <= 0.05 * live for live, dead in rows.values()), rows


def test_off_a_terminal_progress_is_a_line_per_interval_and_phase(
    app: Flask, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Progress(io.StringIO()).interval == 5.0  # what production does
    monkeypatch.setattr(progress_module, "INTERVAL", 0.001)
    path = tmp_path / "world.json"
    with open(path, "w", encoding="utf-8") as out:
        write_world(out, scale=0.005)

    result = app.test_cli_runner().invoke(args=["load-data", str(path)])

    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    ticks = [
        line for line in lines if line.startswith("load-data: parse and check: ") and "%" in line
    ]
    assert ticks, lines
    assert all(" records (" in tick and " records/s" in tick for tick in ticks)
    finals = [line.split(":")[1].strip() for line in lines if " in " in line and " s, " in line]
    assert finals == ["parse and check", "write", "recount", "analyze"]

    quiet = app.test_cli_runner().invoke(args=["load-data", "-q", str(path)])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""


def test_progress_lines_name_phase_records_total_percent_and_rate() -> None:
    stream = io.StringIO()
    progress = Progress(stream, terminal=False, interval=0.01)

    with progress.phase("write", 400, "rows") as phase:
        phase.advance(100)
        time.sleep(0.1)

    first, *_rest, last = stream.getvalue().splitlines()
    assert first.startswith("load-data: write: 100 of 400 rows (25 %), ")
    assert first.endswith(" rows/s")
    assert last.startswith("load-data: write: 100 rows in 0.1 s, ")


def _kill_midway(database_url: str, document: Path, phase: str) -> None:
    """Start load-data on standard input; kill -9 it while parsing, or once it writes."""
    environment = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "load-data", "-"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdin=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)  # fmt: skip
    assert process.stdin is not None and process.stderr is not None
    content = document.read_bytes()
    if phase == "parse":
        # Half the document in: rows are staged, and the command waits for the rest.
        process.stdin.write(content[: len(content) // 2])
        process.stdin.flush()
        time.sleep(3)
    else:
        process.stdin.write(content)
        process.stdin.close()
        for line in process.stderr:
            if b"load-data: parse and check: " in line and b" records in " in line:
                break  # the parse phase's last line: the write begins
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def _triggers(engine: Engine) -> list[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        if backend_name() == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname"
    )
    with engine.connect() as connection:
        return list(connection.execute(text(query)).scalars())


@pytest.mark.parametrize("phase", ["parse", "write"])
def test_a_kill_midway_leaves_the_database_as_it_was(
    phase: str, app: Flask, engine: Engine, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "world.json"
    with open(path, "w", encoding="utf-8") as out:
        write_world(out, scale=0.02, tag="w")
    before = table_snapshot(engine), _triggers(engine)
    url = app.extensions["encounters.settings"].database_url

    _kill_midway(url, path, phase)

    if backend_name() == "postgresql":  # the server ends the killed session's transaction
        deadline = time.monotonic() + 30
        while _other_sessions(engine):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert (table_snapshot(engine), _triggers(engine)) == before
    assert len(before[1]) >= 3


def _other_sessions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
            ).scalar_one()
        )


REWRITE_TRIGGERS = {
    "sqlite": (
        [],
        "CREATE TRIGGER note_{table} AFTER UPDATE ON {table}"
        " BEGIN INSERT INTO rewrites VALUES ('{table}'); END",
        "DROP TRIGGER note_{table}",
    ),
    "postgresql": (
        [
            "CREATE FUNCTION note_rewrite() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO rewrites VALUES (TG_TABLE_NAME); RETURN NULL; END $$"
        ],
        "CREATE TRIGGER note_{table} AFTER UPDATE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION note_rewrite()",
        "DROP TRIGGER note_{table} ON {table}",
    ),
}


def test_the_same_document_twice_rewrites_no_row(
    app: Flask, engine: Engine, dataset: Dataset, tmp_path: Path
) -> None:
    document = valid_document()
    assert load(app, tmp_path, document).exit_code == 0
    before = table_snapshot(engine)
    setup, create, drop = REWRITE_TRIGGERS[backend_name()]
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE rewrites (name text)"))
        for statement in [*setup, *(create.format(table=table) for table in TABLES)]:
            connection.execute(text(statement))
    try:
        assert load(app, tmp_path, document).exit_code == 0
        document["bookings"][0]["Cancelled"] = True  # one booking changes: its encounter too
        assert load(app, tmp_path, document).exit_code == 0
        with engine.connect() as connection:
            rewrites = connection.execute(text("SELECT name FROM rewrites")).scalars().all()
    finally:
        with engine.begin() as connection:
            for table in TABLES:
                connection.execute(text(drop.format(table=table)))
            if setup:
                connection.execute(text("DROP FUNCTION note_rewrite()"))
            connection.execute(text("DROP TABLE rewrites"))
    assert sorted(rewrites) == ["bookings", "encounters"]
    assert table_snapshot(engine) != before


def test_another_writer_during_a_load_leaves_the_counts_exact(
    engine: Engine, dataset: Dataset
) -> None:
    """A booking written by another session while a load's transaction is open is counted."""
    if backend_name() != "postgresql":
        pytest.skip("SQLite has one writer at a time: no other session can write during a load")
    with engine.connect() as connection:
        encounter, first, second = connection.execute(
            text(
                "SELECT e.id, a.id, b.id FROM encounters e, users a, users b WHERE a.id < b.id"
                " AND NOT EXISTS (SELECT FROM bookings x WHERE x.encounter_id = e.id"
                " AND x.user_id IN (a.id, b.id)) LIMIT 1"
            )
        ).one()
    book = text("INSERT INTO bookings (encounter_id, user_id, cancelled) VALUES (:e, :u, false)")
    other = threading.Thread(
        target=lambda: _in_transaction(engine, book, {"e": encounter, "u": second})
    )
    with engine.begin() as load, merge.recount_held_off(load):
        load.execute(book, {"e": encounter, "u": first})
        load.execute(
            text(
                "UPDATE encounters SET active_bookings = (SELECT count(*) FROM bookings"
                " WHERE encounter_id = :e AND NOT cancelled) WHERE id = :e"
            ),
            {"e": encounter},
        )
        other.start()  # another writer books the same encounter before the load commits
        other.join(0.5)
    other.join(10)
    assert not other.is_alive()
    assert miscounted_encounters(engine) == 0


def _in_transaction(engine: Engine, statement: Any, parameters: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(statement, parameters)
