"""The processes of the topology: free ports, a listener awaited, a command run, their pids.

Whatever is started is stopped by pid (`tests.live.stop_process`); nothing is found by name.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

import psutil

from tests.live import port_is_free


def free_ports(count: int, start: int = 28600, stop: int = 28800) -> list[int]:
    """`count` ports of [start, stop) that are free right now.

    Below the kernel's ephemeral range (32768 and up): there, an outgoing connection (HAProxy's
    health checks, say) may take a port between this check and gunicorn's bind.
    """
    found = [port for port in range(start, stop) if port_is_free(port)][:count]
    if len(found) < count:
        raise RuntimeError(f"fewer than {count} free ports in {start}-{stop - 1}")
    return found


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def run(command: list[str]) -> str:
    """Run a command to completion; its output, or an error carrying what it printed."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{command[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def with_children(pid: int) -> list[int]:
    """`pid` and every process below it."""
    try:
        process = psutil.Process(pid)
        return [pid, *(child.pid for child in process.children(recursive=True))]
    except psutil.Error:
        return []
