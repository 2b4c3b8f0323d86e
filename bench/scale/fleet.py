"""The fleet of gunicorn instances behind HAProxy, started and stopped by slot."""

from __future__ import annotations

import contextlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.scale.processes import with_children
from tests.live import Gunicorn, running_gunicorn

INSTANCES = 3
# Where gunicorn.conf.py puts a server's own metrics folder: in memory when the host has it.
MEMORY = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
TOTAL_WORKERS = 6  # (e): 1 x 6, 2 x 3 and 3 x 2


class Fleet:
    """gunicorn instances on fixed ports (HAProxy's app1..app3), started and stopped by slot."""

    def __init__(
        self, name: str, ports: list[int], environment: dict[str, str], logs: Path
    ) -> None:
        self.name = name
        self.ports = ports
        self.environment = environment
        self.logs = logs
        self.running: dict[int, tuple[contextlib.ExitStack, Gunicorn]] = {}
        self.started_pids: set[int] = set()

    def start(
        self, workers: dict[int, int], environments: dict[int, dict[str, str]] | None = None
    ) -> None:
        """`gunicorn -c gunicorn.conf.py wsgi:app` on each slot's port, in parallel, all ready."""

        def one(slot: int) -> tuple[contextlib.ExitStack, Gunicorn]:
            stack = contextlib.ExitStack()
            # Each instance's metrics folder is the fleet's to remove: gunicorn removes the one it
            # makes itself only at a clean exit, and (d) kills an instance with SIGKILL.
            metrics = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="scale-metrics-", dir=MEMORY)
            )
            environment = {
                **self.environment,
                "PROMETHEUS_MULTIPROC_DIR": metrics,
                **(environments or {}).get(slot, {}),
            }
            server = stack.enter_context(
                running_gunicorn(
                    environment["DATABASE_URL"],
                    environment["JWT_SECRET"],
                    self.logs / f"{self.name}{slot + 1}.log",
                    workers=workers[slot],
                    port=self.ports[slot],
                    environment=environment,
                )
            )
            return stack, server

        with ThreadPoolExecutor(len(workers)) as pool:
            futures = {slot: pool.submit(one, slot) for slot in workers}
        errors = []
        for slot, future in futures.items():
            try:
                self.running[slot] = future.result()
            except Exception as error:  # the others are kept, to be stopped like any
                errors.append(error)
                continue
            self.started_pids.update(with_children(self.running[slot][1].pid))
        if errors:
            raise errors[0]

    def stop(self, slot: int) -> int | None:
        """SIGTERM (a graceful stop); the exit status."""
        stack, server = self.running.pop(slot)
        stack.close()
        return server.returncode

    def stop_all(self) -> None:
        """Stop every instance, in parallel."""
        with ThreadPoolExecutor(max(1, len(self.running))) as pool:
            list(pool.map(self.stop, list(self.running)))

    def pids(self) -> list[int]:
        """Masters and workers of every running instance."""
        masters = [server.pid for _, server in self.running.values()]
        return [pid for master in masters for pid in with_children(master)]
