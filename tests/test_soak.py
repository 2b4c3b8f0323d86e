"""A short soak (bench/soak/) in CI: gunicorn on PostgreSQL, every answer checked.

The long run and its figures are in docs/robustness.md. SOAK_SECONDS sets the length here.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from bench.soak.checks import json_equals
from bench.soak.probes import Probe
from bench.soak.run import reset_database, soak
from bench.soak.traffic import drive
from tests.database import POSTGRES_URL
from tests.live import running_gunicorn
from tests.tokens import Tokens

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="the soak drives gunicorn on PostgreSQL: set TEST_DATABASE_URL"
)
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "4"))


def test_short_soak_has_no_5xx_no_wrong_answer_and_flat_memory(
    database_url: str, tmp_path: Path
) -> None:
    report = soak(
        database_url, seconds=SOAK_SECONDS, connections=8, workers=2, log_path=tmp_path / "log"
    )
    print("\n".join(report.lines()))
    assert report.problems == []
    assert sum(report.tally.sent.values()) > 100
    assert set(report.tally.sent) == {"allowed", "denied", "unknown", "malformed"}


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
