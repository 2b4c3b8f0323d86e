"""HAProxy with deploy/haproxy/haproxy.cfg and its runtime API, stopped by pid."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.scale.processes import wait_for_port
from tests.live import stop_process

ROOT = Path(__file__).resolve().parent.parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


@dataclass
class HAProxy:
    """A running HAProxy and its runtime API."""

    port: int
    process: subprocess.Popen[bytes]
    socket_path: Path

    def command(self, line: str) -> str:
        """One runtime API command; its answer."""
        with socket.socket(socket.AF_UNIX) as runtime:
            runtime.settimeout(5)
            runtime.connect(str(self.socket_path))
            runtime.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := runtime.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """`show stat` of the backend's servers, by name."""
        lines = self.command("show stat").lstrip("# ").splitlines()
        rows = csv.DictReader(line for line in lines if line.strip())
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == "encounters" and row["svname"] not in ("BACKEND", "FRONTEND")
        }

    def set_state(self, server: str, state: str) -> None:
        """`set server encounters/<server> state ready|drain|maint`."""
        answer = self.command(f"set server encounters/{server} state {state}").strip()
        if answer:
            raise RuntimeError(f"HAProxy refused 'state {state}' for {server}: {answer}")

    def wait_status(self, server: str, prefix: str, timeout: float = 20) -> float:
        """Seconds until the server's status starts with `prefix` (UP, DOWN, MAINT, DRAIN)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.servers()[server]["status"].startswith(prefix):
                return time.monotonic() - began
            time.sleep(0.05)
        status = self.servers()[server]["status"]
        raise RuntimeError(f"{server} is {status}, not {prefix}, after {timeout} s")


@contextlib.contextmanager
def haproxy(port: int, servers: list[str]) -> Iterator[HAProxy]:
    """HAProxy with deploy/haproxy/haproxy.cfg, its addresses given by the environment."""
    folder = Path(tempfile.mkdtemp(prefix="encounters-haproxy-"))
    try:
        runtime = folder / "runtime.sock"
        environment = {
            **os.environ,
            "HAPROXY_BIND": f"127.0.0.1:{port}",
            "HAPROXY_RUNTIME_SOCKET": str(runtime),
            **{f"APP{number}": server for number, server in enumerate(servers, start=1)},
        }
        log = folder / "haproxy.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(HAPROXY_CONFIG)],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port)
            yield HAProxy(port, process, runtime)
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
