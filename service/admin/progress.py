"""How load-data shows progress: a bar per phase on a terminal, else a line every few seconds.

Off a terminal (a Job's logs) a line is printed at least every INTERVAL seconds while a phase
runs, from a thread of its own (so a long SQL statement does not silence it), and one when the
phase ends: the phase, records done of total, percent and rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

INTERVAL = 5.0
# A bar of a phase whose total is unknown (the parse) runs on `fraction`, in this many steps.
_STEPS = 1000


class Phase:
    """One phase's counters: `done` of `total` (None while unknown), with `fraction` overriding."""

    def __init__(self, name: str, total: int | None, unit: str) -> None:
        self.name = name
        self.total = total
        self.unit = unit
        self.done = 0
        self.began = time.monotonic()
        # For a phase whose total is unknown until it ends (the parse): how far it is, 0 to 1.
        self.fraction: Callable[[], float | None] = lambda: None
        self._bar: Any = None

    def advance(self, count: int = 1) -> None:
        """Count `count` more done."""
        self.done += count
        if self._bar is None:
            return
        if self.total is not None:
            self._bar.update(self.done - self._bar.pos)
        elif self.done % 1000 == 0:  # a record at a time: redrawn every thousand
            self._bar.update(int((self.fraction() or 0) * _STEPS) - self._bar.pos)

    def line(self, finished: bool = False) -> str:
        """`load-data: write: 120,000 of 400,000 rows (30 %), 52,000 rows/s`."""
        elapsed = max(time.monotonic() - self.began, 1e-9)
        rate = f"{self.done / elapsed:,.0f} {self.unit}/s"
        if finished:
            return f"load-data: {self.name}: {self.done:,} {self.unit} in {elapsed:.1f} s, {rate}"
        fraction = self.fraction()
        if fraction is None and self.total:
            fraction = self.done / self.total
        of = f" of {self.total:,}" if self.total is not None else ""
        percent = f" ({100 * fraction:.0f} %)" if fraction is not None else ""
        return f"load-data: {self.name}: {self.done:,}{of} {self.unit}{percent}, {rate}"


class Progress:
    """Reports the phases of one load to `stream`; `quiet` reports nothing."""

    def __init__(
        self,
        stream: TextIO,
        *,
        quiet: bool = False,
        terminal: bool | None = None,
        interval: float | None = None,
    ) -> None:
        self.stream = stream
        self.quiet = quiet
        self.terminal = stream.isatty() if terminal is None else terminal
        self.interval = INTERVAL if interval is None else interval

    @contextmanager
    def phase(self, name: str, total: int | None = None, unit: str = "records") -> Iterator[Phase]:
        """Report `name` while the block runs; a line when it ends without an error."""
        phase = Phase(name, total, unit)
        if self.quiet:
            yield phase
        elif self.terminal:
            length = _STEPS if total is None else total
            with click.progressbar(length=length, label=name, file=self.stream) as bar:
                phase._bar = bar
                yield phase
                bar.update(length - bar.pos)  # the phase is done, whatever it counted
        else:
            stop = threading.Event()
            ticker = threading.Thread(target=self._tick, args=(phase, stop), daemon=True)
            ticker.start()
            try:
                yield phase
            finally:
                stop.set()
                ticker.join()
            self._print(phase.line(finished=True))

    def _tick(self, phase: Phase, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self._print(phase.line())

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
