"""Real servers on 127.0.0.1, for the tests and the benchmarks: gunicorn, a TCP proxy to
PostgreSQL, a JWKS endpoint, an OTLP/HTTP trace receiver.

Every port comes from free_port: by default from PORT_RANGE, the range this project's tests may
use on a shared machine.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ROOT = Path(__file__).resolve().parent.parent
PORT_RANGE = range(18000, 19000)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` can be bound right now, as every server here binds (SO_REUSEADDR)."""
    # Binding, not connecting: a client socket of another process may hold the port too.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(ports: range = PORT_RANGE) -> int:
    """A port of `ports` that can be bound right now."""
    candidates = list(ports)
    random.shuffle(candidates)
    for port in candidates:
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


@contextlib.contextmanager
def refused_port(ports: range = PORT_RANGE) -> Iterator[int]:
    """A port of `ports` that refuses connections for as long as the block runs: a host that is down.

    The port stays bound (never listening) meanwhile, so no server started in the block can take
    it. A bare free_port() for a "down" database could come back as the next server's own port:
    a proxy to it then connected to itself, without end.
    """
    candidates = list(ports)
    random.shuffle(candidates)
    for port in candidates:
        holder = socket.socket()  # no SO_REUSEADDR: port_is_free() sees the port as taken
        try:
            holder.bind(("127.0.0.1", port))
        except OSError:
            holder.close()
            continue
        with holder:
            yield port
        return
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def stop_process(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after `timeout`; always reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Answer:
    """One HTTP response, as a caller sees it."""

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


def fetch(url: str, headers: Mapping[str, str] | None = None, method: str = "GET") -> Answer:
    """One HTTP request; error statuses are answers too."""
    request = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read())


@dataclass
class Gunicorn:
    """`gunicorn -c gunicorn.conf.py APP` in a subprocess, its output kept in a file.

    The environment is this process's without its token, metrics and gunicorn settings, plus
    `environment`; the server is up once `ready_path` answers 200.
    """

    environment: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    app: str = "wsgi:app"
    ready_path: str = "/health/live"
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The gunicorn master's process id (once started)."""
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The master's exit status, None while it runs."""
        assert self.process is not None, "not started"
        return self.process.returncode

    def start(self, timeout: float = 30) -> Gunicorn:
        """Start the server and wait until it is ready."""
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("JWT_", "PROMETHEUS_", "GUNICORN_", "WEB_CONCURRENCY"))
        }
        environment.update(BIND=f"{self.host}:{self.port}", **self.environment)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", self.app],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log()[-2000:]}")
            with contextlib.suppress(OSError):
                if fetch(self.url + self.ready_path).status == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn not ready after {timeout} s: {self.log()[-2000:]}")

    def stop(self) -> int:
        """Stop gracefully (SIGTERM), as an orchestrator does; return the exit status."""
        assert self.process is not None
        stop_process(self.process, timeout=30)
        return self.process.returncode

    def log(self) -> str:
        """Everything gunicorn and the app wrote so far."""
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[str]:
        """What the server wrote so far, a line each."""
        return self.log().splitlines()

    def answering_workers(self, route: str, after: int = 0) -> dict[int, set[int]]:
        """The statuses each worker (by pid) answered on `route`, from log line `after` on."""
        answered: dict[int, set[int]] = {}
        for line in self.log_lines()[after:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("logger") == "encounters.access" and record.get("route") == route:
                answered.setdefault(record["pid"], set()).add(record["status"])
        return answered

    def workers(self) -> list[psutil.Process]:
        """The worker processes (children of the master)."""
        assert self.process is not None
        return psutil.Process(self.process.pid).children()


@contextlib.contextmanager
def running_gunicorn(
    database_url: str,
    secret: str,
    log_path: Path,
    *,
    workers: int = 2,
    port: int | None = None,
    environment: dict[str, str] | None = None,
    app: str = "wsgi:app",
) -> Iterator[Gunicorn]:
    """APP under gunicorn on `database_url` with the HMAC `secret`, ready once the database
    answers; stopped at the end of the block."""
    settings = {
        "WEB_CONCURRENCY": str(workers),
        "DATABASE_URL": database_url,
        "JWT_SECRET": secret,
        "JWT_ALGORITHMS": "HS256",
        **(environment or {}),
    }
    server = Gunicorn(settings, log_path, port or free_port(), app, "/health/ready")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `stop()` makes the target unreachable, for real."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0  # connections accepted so far

    def start(self) -> TcpProxy:
        """Accept connections on the port (the same one after a stop)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, like a database host gone away."""
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                _close(self._listener)
                self._listener = None
            for connection in self._connections:
                _close(connection)
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass

    def answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer:
    """An HTTP server on 127.0.0.1, in a thread, that a test starts and stops (same port)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class, bound to this server's state."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start answering (on the same port after a stop)."""
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop answering: the peer is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class JwksServer(LoopbackServer):
    """A JWKS endpoint whose key set a test can rotate, stop and restart."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0

    @property
    def url(self) -> str:
        """The JWKS URL."""
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """Serve the current `keys`, counting fetches."""
        owner = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                owner.fetches += 1
                self.answer(json.dumps({"keys": owner.keys}).encode(), "application/json")

        return Handler


class OtlpReceiver(LoopbackServer):
    """An OTLP/HTTP endpoint (protobuf) that keeps every trace export it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ExportTraceServiceRequest] = []

    @property
    def url(self) -> str:
        """The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it (the exporter adds /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """Accept exports on POST /v1/traces."""
        owner = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                owner.requests.append(ExportTraceServiceRequest.FromString(body))
                self.answer(
                    ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"
                )

        return Handler


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None
