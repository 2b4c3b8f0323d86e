"""gunicorn settings for the encounters service; every value can come from the environment.

`gunicorn -c gunicorn.conf.py wsgi:app`. The service's configuration is checked here, in the
master, so a bad one stops gunicorn with one line instead of a loop of failing workers.
"""

import email.utils
import functools
import importlib
import os
import re
import shutil
import sys
import tempfile
from typing import Any, NoReturn

# What a worker writes on every request goes to memory when the host has it (/dev/shm), never to a
# disk that may stall it: its heartbeat (gunicorn's worker_tmp_dir, touched per request) and its
# metric files (below). Measured on the benchmark's 20-item answers: 1.9 % more requests a second.
_MEMORY = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

# prometheus-client picks its multiprocess mode when first imported: this comes before the service.
# (A SIGHUP reload reads this file again: the marker says the folder is still ours to remove.)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="encounters-metrics-", dir=_MEMORY
    )
    os.environ["ENCOUNTERS_OWNS_METRICS_DIR"] = "1"
_OWN_METRICS_DIR = os.environ.get("ENCOUNTERS_OWNS_METRICS_DIR") == "1"


def _refuse(reason: str) -> NoReturn:
    """Stop gunicorn before it starts, with one line (and no folder left behind)."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    sys.exit(f"encounters: configuration error: {reason}")


from gunicorn import util  # noqa: E402
from gunicorn.config import PreRequest  # noqa: E402
from gunicorn.glogging import Logger  # noqa: E402
from prometheus_client import multiprocess  # noqa: E402

from service.config import ConfigError, Settings  # noqa: E402
from service.ops.connections import hold_answer, release_connection  # noqa: E402
from service.ops.logs import logging_config  # noqa: E402
from service.representations import http_date  # noqa: E402

try:
    _SETTINGS = Settings.from_environment()
except ConfigError as error:
    _refuse(str(error))

# OpenTelemetry is imported here, in the master, and only when tracing is on: the workers inherit
# the loaded modules instead of each paying about half a second at boot. Its provider, exporter
# and their thread start in each worker, after fork (post_fork), never shared across a fork.
_tracing = importlib.import_module("service.ops.tracing") if _SETTINGS.tracing else None


def _date_header(timestamp: float | None = None) -> str:
    """gunicorn's `util.http_date`, which it calls for every response's Date header: now, the
    service's date formatted once a second (gunicorn formatted it afresh, 20 µs of a worker's CPU
    under load); any other time as gunicorn formats it."""
    if timestamp is None:
        return http_date()
    return email.utils.formatdate(timestamp, localtime=False, usegmt=True)


util.http_date = _date_header

_METRICS_FILE = re.compile(r"(counter|gauge_[a-z]+|histogram|summary)_\d+\.db")


def _whole_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        _refuse(f"{name} must be a whole number >= 1, got {raw!r}")
    return int(raw)


def _cores() -> int:
    # The CPUs this process may run on (its CPU set), not every CPU of the host.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


bind = [os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT') or '8000'}"]
workers = _whole_number("WEB_CONCURRENCY", min(2 * _cores() + 1, 12))
threads = _whole_number("GUNICORN_THREADS", 1)
timeout = _whole_number("GUNICORN_TIMEOUT", 30)
# Below the 30 s an orchestrator (Kubernetes by default) waits after SIGTERM before SIGKILL.
graceful_timeout = _whole_number("GUNICORN_GRACEFUL_TIMEOUT", 25)
keepalive = 5
worker_tmp_dir = _MEMORY  # None: Python's temporary folder, gunicorn's own default
# Workers import the app after fork (no preload): each opens its own database connections.
preload_app = False
# The app writes one JSON access line per request (with the route, not the raw path).
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = logging_config(loglevel.upper())


class AppAccessLogger(Logger):
    """gunicorn's logger, less its access line: the app writes its own (with the route).

    `logconfig_dict` drops gunicorn's line (`gunicorn.access` at CRITICAL, no handlers), but
    gunicorn, seeing a logging configuration, still gathered the line's atoms (its date, every
    header and environ value) for every request first: about 17 µs of a worker's CPU.
    """

    access_log_enabled = False


logger_class = AppAccessLogger
proc_name = "encounters"
# gunicorn 25's control socket defaults to one path per user ($HOME/.gunicorn): several servers of
# one user (tests, a second deployment) would fight over it, and nothing here uses it.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Start the metrics of this server from zero: files of an earlier run would be summed in."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    # Only prometheus-client's own files: the folder may be shared with something else.
    for name in os.listdir(directory):
        if _METRICS_FILE.fullmatch(name):
            os.remove(os.path.join(directory, name))


def child_exit(server: object, worker: object) -> None:
    """Let prometheus-client drop the live-only values of a worker that is gone."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def post_fork(server: object, worker: object) -> None:
    """Start this worker's tracer provider and exporter, when tracing is on."""
    if _tracing is not None:
        _tracing.start_tracing()


def pre_request(worker: Any, req: Any) -> None:
    """gunicorn's own hook (a debug line), then the answer held until it is whole."""
    PreRequest.default(worker, req)
    hold_answer(req, is_ssl=_is_ssl(worker.cfg))


def post_request(worker: Any, req: object, environ: object, resp: object) -> None:
    """Send the answer; close the client's connection at once if nothing of it is left unread."""
    release_connection(req, resp, is_ssl=_is_ssl(worker.cfg))


@functools.cache
def _is_ssl(settings: Any) -> bool:
    # Once a process: gunicorn's `is_ssl` looks two settings up anew each time it is read.
    return bool(settings.is_ssl)


def worker_exit(server: object, worker: object) -> None:
    """Export the spans a worker still holds before it exits (a graceful stop)."""
    if _tracing is not None:
        _tracing.stop_tracing()


def on_exit(server: object) -> None:
    """Remove the metrics folder this configuration made."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
