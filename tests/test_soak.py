"""A short soak (bench/soak/) in CI: gunicorn on PostgreSQL, every answer checked.

The long run and its figures are in docs/robustness.md. SOAK_SECONDS sets the length here. The
memory judgement is tested on its own too, on series made to grow (no database needed).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from bench.soak.checks import json_equals
from bench.soak.memory import MIN_SAMPLES, memory_problems
from bench.soak.probes import Probe
from bench.soak.run import reset_database, soak
from bench.soak.traffic import drive
from tests.database import POSTGRES_URL
from tests.live import running_gunicorn
from tests.tokens import Tokens

needs_postgres = pytest.mark.skipif(
    POSTGRES_URL is None, reason="the soak drives gunicorn on PostgreSQL: set TEST_DATABASE_URL"
)
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "4"))
MIB = 2**20


def test_memory_judgement_fails_a_growing_worker_and_passes_a_flat_one() -> None:
    """16 samples (CI's 4 s at 4 a second): a leak fails, noise and one late spike do not."""
    flat = [100 * MIB + (n % 3) * MIB for n in range(16)]
    spike = [*flat[:-1], 300 * MIB]
    leak = [100 * MIB + n * 3 * MIB for n in range(16)]  # 12 MiB a second
    assert list(memory_problems({1: flat, 2: spike})) == []
    (problem,) = memory_problems({1: flat, 3: leak})
    assert problem.startswith("worker 3 grew from 109576192 to 147324928 bytes")


def test_too_few_memory_samples_fail_rather_than_pass_unjudged() -> None:
    """Three samples a worker (CI's soak sampled once a second) cannot show growth."""
    (problem,) = memory_problems({1: [100 * MIB] * 3})
    assert f"3 memory samples, fewer than {MIN_SAMPLES}" in problem


@needs_postgres
def test_short_soak_has_no_5xx_no_wrong_answer_and_flat_memory(
    database_url: str, tmp_path: Path
) -> None:
    report = soak(
        database_url, seconds=SOAK_SECONDS, connections=8, workers=2, log_path=tmp_path / "log"
    )
    print("\n".join(report.lines()))
    assert report.problems == []
    assert all(len(rss) >= MIN_SAMPLES for rss in report.memory.values())
    assert sum(report.tally.sent.values()) > 100
    assert set(report.tally.sent) == {"allowed", "denied", "unknown", "malformed"}


@needs_postgres
def test_the_soak_notices_a_wrong_answer(database_url: str, tmp_path: Path) -> None:
    """The checker is not blind: a probe expecting another list is counted as a failure."""
    secret = secrets.token_urlsafe(48)
    reset_database(database_url)

    wrong = Probe(
        "allowed",
        "rui's list claimed empty",
        "/users/me/encounters",
        Tokens(secret).header("SM-1", "StaffMember"),
        200,
        json_equals([]),
    )
    with running_gunicorn(database_url, secret, tmp_path / "log", workers=1) as server:
        tally = drive(server, [wrong], seconds=0.5, connections=1, seed=1)
    assert tally.failures and all("wrong list" in failure for failure in tally.failures)
