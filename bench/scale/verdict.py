"""A scale-check verdict, and the lines the run prints as it goes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

STARTED = time.monotonic()


@dataclass
class Check:
    """One verdict, with the figures that back it."""

    name: str
    passed: bool
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    short: str = ""  # the figure the summary line gives


def progress(message: str) -> None:
    """One line, stamped with the seconds since the start."""
    print(f"  [{time.monotonic() - STARTED:5.1f} s] {message}", flush=True)


def report(check: Check) -> None:
    """One check's line, as it finishes."""
    progress(f"({check.name}) {'PASS' if check.passed else 'FAIL'}: {check.summary}")
