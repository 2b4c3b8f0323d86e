"""One soak run: a fresh dataset, gunicorn on it, the traffic with memory sampled, the report.

The database's tables are EMPTIED and the test dataset (tests/dataset.py) loaded; afterwards its
row counts must be unchanged and gunicorn's output must hold no email, token or secret.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from bench.soak.memory import sample_memory
from bench.soak.probes import probes
from bench.soak.report import Report
from bench.soak.traffic import drive
from service.admin.migrate import upgrade
from service.db import make_engine
from service.models import Base
from tests.database import row_counts
from tests.dataset import insert_dataset
from tests.leaks import leaks_in
from tests.live import free_port, running_gunicorn

PORTS = range(38400, 38500)


def reset_database(url: str) -> dict[str, int]:
    """Migrate, empty every table, load the test dataset; return the row counts."""
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    insert_dataset(engine)
    counts = row_counts(engine)
    engine.dispose()
    return counts


def soak(
    database_url: str,
    *,
    seconds: float,
    connections: int,
    workers: int,
    seed: int = 1,
    port: int | None = None,
    log_path: Path | None = None,
) -> Report:
    """Run one soak against a fresh gunicorn on `database_url`; return its judged report."""
    secret = secrets.token_urlsafe(48)
    rows_before = reset_database(database_url)
    log_path = log_path or Path(f"/tmp/encounters-soak-{os.getpid()}.log")
    mix = probes(secret)
    port = port or free_port(PORTS)
    with running_gunicorn(database_url, secret, log_path, workers=workers, port=port) as server:
        drive(server, mix, min(2.0, seconds / 5), min(connections, 4), seed)  # warm-up
        memory: dict[int, list[int]] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=sample_memory, args=(server, stop, memory))
        sampler.start()
        tally = drive(server, mix, seconds, connections, seed)
        stop.set()
        sampler.join()
    tokens = [probe.headers.get("Authorization", "").partition(" ")[2] for probe in mix]
    engine = make_engine(database_url)
    rows_after = row_counts(engine)
    engine.dispose()
    return Report(
        seconds, connections, workers, tally, memory, rows_before, rows_after,
        leaks_in(log_path.read_text(errors="replace"), [t for t in tokens if t] + [secret]),
        log_path,
    ).judge()  # fmt: skip
