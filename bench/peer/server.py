"""The peer under uvicorn (2 workers, uvloop, httptools), from its own venv (as tests.live does
gunicorn).

`.venv-peer` is made from bench/peer/requirements.txt (hash-pinned) by `make bench`; the service's
venv never holds FastAPI or asyncpg, and nothing of the service imports the peer.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.live import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent.parent
PEER_VENV = ROOT / ".venv-peer"


@dataclass
class Uvicorn:
    """`uvicorn app:app --workers N` of bench/peer in a subprocess, its output kept in a file."""

    environment: dict[str, str]
    log_path: Path
    workers: int = 2
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The uvicorn supervisor's process id (its children are the workers)."""
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, timeout: float = 30) -> Uvicorn:
        """Start the server and wait until its database answers."""
        uvicorn = PEER_VENV / "bin" / "uvicorn"
        if not uvicorn.exists():
            raise RuntimeError(f"{uvicorn} is missing: make bench installs the peer's venv")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("JWT_")}
        environment.update(self.environment)
        command = [str(uvicorn), "app:app", "--app-dir", str(ROOT / "bench" / "peer")]
        command += [f"--workers={self.workers}", "--loop=uvloop", "--http=httptools"]
        command += [f"--host={self.host}", f"--port={self.port}", "--no-server-header"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
                connection.request("GET", "/health/ready")
                if connection.getresponse().status == 200:
                    connection.close()
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"uvicorn not ready after {timeout} s")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM to the supervisor, which stops its workers)."""
        if self.process is not None:
            stop_process(self.process, timeout=30)
