"""The container's health check: `python -m service.ops.probe` asks `/health/ready` of this server.

It probes the address gunicorn binds, read the way gunicorn.conf.py reads it (`BIND`, else
`0.0.0.0:$PORT`), so a `BIND` on another port or host is probed where the server listens. Only the
standard library: it runs every 30 seconds, and must not import the app.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping

TIMEOUT_SECONDS = 4
_EVERY_ADDRESS = ("", "0.0.0.0", "::")


def ready_url(environment: Mapping[str, str]) -> str:
    """The readiness URL of the server that `environment` configures."""
    bind = environment.get("BIND") or f"0.0.0.0:{environment.get('PORT') or '8000'}"
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host in _EVERY_ADDRESS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/health/ready"


def main() -> int:
    """0 when the server answers ready, else 1 with the reason on stderr."""
    url = ready_url(os.environ)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS):
            return 0
    except OSError as error:
        print(f"not ready: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
