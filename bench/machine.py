"""What the benchmark's figures were measured on: the code's revision and the machine.

Both head the printed output and the results JSON, so that figures of different runs compare
only where they should.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.datasets import DEFAULT_SERVER, libpq_url
from bench.load import wrk_binary

ROOT = Path(__file__).resolve().parent.parent


def revision() -> str:
    """The code's git revision (with `+dirty` for uncommitted changes)."""

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    with (
        contextlib.suppress(OSError, psycopg.Error),
        psycopg.connect(libpq_url(DEFAULT_SERVER), connect_timeout=3) as pg,
    ):
        row = pg.execute("SHOW server_version").fetchone()
        postgres = row[0] if row else "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "python_build": python_build(),
        "postgres": locals().get("postgres", "?"),
        "wrk": subprocess.run(
            [wrk_binary(), "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0:1],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def python_build() -> dict[str, Any]:
    """How the interpreter was built: its flags move a Python-heavy stack's figures by a sixth.

    A build without profile-guided optimisation and link-time optimisation (pyenv's default, say)
    runs Flask's request about 17 % slower than one with them (Debian's, or the `python` images
    the Dockerfile starts from); the peer, with more of its request in C, loses less of it.
    """
    arguments = sysconfig.get_config_var("CONFIG_ARGS") or ""
    maps = ""
    with contextlib.suppress(OSError):
        maps = Path("/proc/self/maps").read_text()
    return {
        "executable": os.path.realpath(sys.executable),
        # Loaded as a shared library (pyenv's --enable-shared), or linked in (Debian's).
        "libpython_shared": "libpython" in maps,
        # What configure recorded; Debian's static interpreter is optimised without saying so.
        "configured_pgo": "--enable-optimizations" in arguments,
        "configured_lto": "--with-lto" in arguments,
    }
