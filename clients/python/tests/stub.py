"""A scripted HTTP server on 127.0.0.1: answers in the order given, and keeps every request."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DROP = "drop"  # close the connection without any answer


@dataclass(frozen=True)
class Answer:
    """One scripted answer."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before the answer starts

    def payload(self) -> bytes:
        """The body's bytes: JSON for a value, as they are for bytes."""
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]


class Stub:
    """The server; `script` is consumed in order, the last answer repeats."""

    def __init__(self) -> None:
        self.script: list[Answer | str] = []
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append(Seen(self.path, dict(self.headers.items())))
                answer = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                if answer == DROP:
                    self.close_connection = True
                    return
                assert isinstance(answer, Answer)
                time.sleep(answer.delay)
                payload = answer.payload()
                self.send_response(answer.status)
                if payload:
                    self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Stub:
        """Start answering."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and free the port."""
        self._server.shutdown()
        self._server.server_close()


ENCOUNTER = {
    "UnitNumber": 3,
    "Id": "93ccd5ee-700e-4fff-857f-0905ff5ebff2",
    "DateTime": "2026-12-01T18:00:00+00:00",
    "EndDate": "2026-12-01T19:00:00+00:00",
    "Duration": 60,
    "Status": "Available",
    "IsOnline": False,
    "CenterId": "fc48ac7b-ec1e-4988-8880-40ebfd16cba9",
    "CenterName": "Lisbon Downtown",
    "CenterReferenceId": "C-001",
}


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem-details body as the service writes it."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return {**body, **extra, "request_id": "req-1"}
