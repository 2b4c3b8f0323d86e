"""Requests through one port of the topology: a single GET, and wrk running beside a block."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.load import LUA, Line, wrk_binary
from tests.live import stop_process


def get(port: int, line: Line) -> tuple[int, bytes, str]:
    """(status, body, ETag) of one GET on 127.0.0.1:`port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", line.path, headers={"Authorization": f"Bearer {line.token}"})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("ETag") or ""
    finally:
        connection.close()


@contextlib.contextmanager
def wrk(port: int, lines: list[Line], seconds: float, connections: int) -> Iterator[dict[str, Any]]:
    """wrk through 127.0.0.1:`port` while the block runs; its figures fill the dict on exit."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="encounters-wrk-") as folder:
        script, requests_file = Path(folder, "cycle.lua"), Path(folder, "requests.txt")
        script.write_text(LUA)
        requests_file.write_text("".join(f"{line.path} {line.token}\n" for line in lines))
        process = subprocess.Popen(
            [wrk_binary(), f"-t{min(2, connections)}", f"-c{connections}", f"-d{round(seconds)}s",
             "--timeout=10s", "-s", str(script), f"http://127.0.0.1:{port}", "--",
             str(requests_file)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            yield figures
            output, _ = process.communicate(timeout=seconds + 30)
        finally:
            stop_process(process)
    found = [line for line in output.splitlines() if line.startswith("WRK_JSON ")]
    if process.returncode or not found:
        raise RuntimeError(f"wrk failed ({process.returncode}): {output}")
    figures.update(json.loads(found[0].removeprefix("WRK_JSON ")))
    figures["failed"] = sum(
        figures[name]
        for name in ("connect_errors", "read_errors", "write_errors", "timeouts", "non2xx3xx")
    )
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
