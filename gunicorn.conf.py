"""gunicorn settings for the encounters service; every value can come from the environment.

`gunicorn -c gunicorn.conf.py wsgi:app`. The service's configuration is checked here, in the
master, so a bad one stops gunicorn with one line instead of a loop of failing workers.
"""

import os
import shutil
import sys
import tempfile

# prometheus-client picks its multiprocess mode when first imported: this comes before the service.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="encounters-metrics-")

from prometheus_client import multiprocess  # noqa: E402

from service.config import ConfigError, Settings  # noqa: E402
from service.logs import logging_config  # noqa: E402

try:
    Settings.from_environment()
except ConfigError as error:
    sys.exit(f"encounters: configuration error: {error}")


def _whole_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"encounters: configuration error: {name} must be a whole number >= 1: {raw!r}")
    return int(raw)


def _cores() -> int:
    # The CPUs this process may run on (a container's limit), not every CPU of the host.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


bind = [os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT') or '8000'}"]
workers = _whole_number("WEB_CONCURRENCY", min(2 * _cores() + 1, 12))
threads = _whole_number("GUNICORN_THREADS", 1)
timeout = _whole_number("GUNICORN_TIMEOUT", 30)
# Below the 30 s an orchestrator (Kubernetes by default) waits after SIGTERM before SIGKILL.
graceful_timeout = _whole_number("GUNICORN_GRACEFUL_TIMEOUT", 25)
keepalive = 5
# Workers import the app after fork (no preload): each opens its own database connections.
preload_app = False
# The app writes one JSON access line per request (with the route, not the raw path).
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = logging_config(loglevel.upper())
proc_name = "encounters"
# gunicorn 25's control socket defaults to one path per user ($HOME/.gunicorn): several servers of
# one user (tests, a second deployment) would fight over it, and nothing here uses it.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Start the metrics of this server from zero: files of an earlier run would be summed in."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))


def child_exit(server: object, worker: object) -> None:
    """Let prometheus-client drop the live-only values of a worker that is gone."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """Remove the metrics folder this configuration made."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
