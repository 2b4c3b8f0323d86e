"""Prometheus metrics: requests, latency, database and resolver time; correct across workers.

Under gunicorn, `gunicorn.conf.py` sets PROMETHEUS_MULTIPROC_DIR before this module is imported,
so prometheus-client keeps every worker's values in files there and `/metrics` adds them up,
whichever worker answers the scrape.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any

from flask import Blueprint, Flask, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event
from werkzeug import Response

from service.ops.logs import request_seconds, route_template

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# `*_created` series say when a process started counting: noise here, and absent under gunicorn.
disable_created_metrics()
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Every label value comes from a closed set (SPEC 9): a method no route serves, which anyone can
# make up without a token, would otherwise add a series per spelling, in memory and on disk.
# Routes are Flask's rules or one unmatched label; statuses are the codes the app itself chose.
OTHER_METHOD = "other"

REQUESTS = Counter(
    "encounters_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "encounters_http_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
)
DATABASE_SECONDS = Histogram(
    "encounters_db_statement_duration_seconds",
    "Time spent executing one SQL statement.",
    buckets=_FAST_BUCKETS,
)
RESOLVER_SECONDS = Histogram(
    "encounters_resolver_duration_seconds",
    "Time spent in one call of the user resolver.",
    buckets=_FAST_BUCKETS,
)

# Where requests' reads went (service.routing): the label is replica or primary, nothing else.
READS = Counter(
    "encounters_db_reads",
    "Requests' database connections, by where they read: replica or primary.",
    ["destination"],
)
REPLICA_LAG = Gauge(
    "encounters_db_replica_lag_seconds",
    "The read replica's lag behind the primary as a worker last saw it, the largest of the live"
    " workers' (+Inf: down or no longer a standby).",
    multiprocess_mode="livemax",
)

blp = Blueprint("metrics", __name__)


class WorkerFilesCollector(MultiProcessCollector):
    """Every worker's values, less the files that a worker is creating at this very moment.

    prometheus-client creates a worker's file empty and only then sizes it: a scrape that read it in
    between failed with a 500. Such a file holds no value yet, and a file only ever grows, so one
    that is at least a header long when listed is whole when read.
    """

    def collect(self) -> Any:
        files = glob.glob(os.path.join(self._path, "*.db"))
        return self.merge([f for f in files if _size(f) >= _HEADER_BYTES], accumulate=True)


_HEADER_BYTES = 8  # the used-bytes counter at the head of every file


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:  # a dead worker's live gauges, removed since the listing
        return 0


@blp.route("/metrics", methods=["GET"])
def metrics() -> Response:
    """The metrics in Prometheus text format, summed over every worker of this server."""
    registry = REGISTRY
    if os.environ.get(MULTIPROCESS_VARIABLE):
        registry = CollectorRegistry()
        WorkerFilesCollector(registry)
    # The format the scraper asks for: text 0.0.4 by default, OpenMetrics when it prefers that.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(registry), content_type=content_type)


def init_metrics(app: Flask) -> None:
    """Count and time every request, and serve `/metrics`."""
    app.register_blueprint(blp)
    observe_engines()

    served: frozenset[str] = frozenset()
    # Each (method, route, status)'s series, found once: `labels()` checks and locks every time.
    # The label values come from closed sets, so this stays as small as the series themselves.
    series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    @app.after_request
    def observe_request(response: Response) -> Response:
        nonlocal served
        if not served:  # on the first request, when every blueprint has added its rules
            served = frozenset(m for rule in app.url_map.iter_rules() for m in rule.methods or ())
        method = request.method if request.method in served else OTHER_METHOD
        key = (method, route_template(), response.status_code)
        children = series.get(key)
        if children is None:
            children = series[key] = (
                REQUESTS.labels(method, key[1], str(key[2])),
                REQUEST_SECONDS.labels(method, key[1]),
            )
        children[0].inc()
        children[1].observe(request_seconds())
        return response


def observe_engines() -> None:
    """Time every statement that any engine of this process executes."""
    if not event.contains(Engine, "before_cursor_execute", _statement_started):
        event.listen(Engine, "before_cursor_execute", _statement_started)
        event.listen(Engine, "after_cursor_execute", _statement_finished)
        event.listen(Engine, "handle_error", _statement_failed)


def observe_resolver(seconds: float) -> None:
    """Record one call of the user resolver."""
    RESOLVER_SECONDS.observe(seconds)


def _statement_started(connection: Any, *_args: Any) -> None:
    connection.info.setdefault("statement_started", []).append(time.perf_counter())


def _statement_finished(connection: Any, *_args: Any) -> None:
    started = connection.info.get("statement_started")
    if started:
        DATABASE_SECONDS.observe(time.perf_counter() - started.pop())


def _statement_failed(context: Any) -> None:
    # A failed statement took time too (a timeout may be the slowest of all).
    connection = context.connection
    if connection is not None:
        _statement_finished(connection)
