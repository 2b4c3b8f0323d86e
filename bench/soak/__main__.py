"""Soak: drive the real service (gunicorn, the repo's gunicorn.conf.py) and check every answer.

    python -m bench.soak --database-url postgresql+psycopg://postgres@127.0.0.1:5432/soak \\
        --seconds 60 --connections 32 --workers 2

The database's tables are EMPTIED and the test dataset (tests/dataset.py) loaded. Then N
connections send, for T seconds, a mix of allowed, denied, unknown and malformed requests; each
answer is compared with what it must be (status, and the exact body: tests/oracle.py for lists).
Worker memory is sampled every second. The run fails (exit 1) on any 5xx, any wrong answer,
worker memory that grows, rows that change, or a log line holding an email, token or secret.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.soak.run import soak


def main() -> int:
    """The command line: run one soak, print its figures, exit 1 if anything went wrong."""
    # `prog`: the usage line reads as it did when the soak was the single file bench/soak.py.
    parser = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="the database to EMPTY and load with the test dataset (default: TEST_DATABASE_URL)",
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=None, help="default: a free one of 38400-38499")
    arguments = parser.parse_args()
    if not arguments.database_url:
        parser.error("--database-url (or TEST_DATABASE_URL) is required")
    report = soak(
        arguments.database_url,
        seconds=arguments.seconds,
        connections=arguments.connections,
        workers=arguments.workers,
        seed=arguments.seed,
        port=arguments.port,
    )
    print("\n".join(report.lines()))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
