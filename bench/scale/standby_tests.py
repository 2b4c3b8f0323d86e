"""The tests-on-standby steps: the test modules that need a real hot standby (and PgBouncer)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.scale.verdict import Check

ROOT = Path(__file__).resolve().parents[2]


def check_tests(
    primary: str,
    standby: str,
    modules: tuple[str, ...] = ("tests/test_replica.py", "tests/test_pgbouncer.py"),
    name: str = "tests",
) -> Check:
    """Test modules that need a real hot standby (and a real PgBouncer), run against them."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *modules],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "TEST_DATABASE_URL": primary, "TEST_REPLICA_DATABASE_URL": standby},
    )  # fmt: skip
    lines = done.stdout.strip().splitlines() or [done.stderr.strip()]
    last = lines[-1].strip("= ")
    passed = done.returncode == 0 and "skipped" not in last
    if not passed:
        print(done.stdout[-3000:])
    summary = f"{' and '.join(modules)} on the standby: {last}"
    return Check(name, passed, summary, short=last.split(" in ")[0])
