"""The container's health check probes where gunicorn binds (BIND, else PORT), and fails when unready."""

from __future__ import annotations

import pytest

from service.ops import probe
from tests.live import free_port


@pytest.mark.parametrize(
    ("environment", "url"),
    [
        ({}, "http://127.0.0.1:8000/health/ready"),
        ({"PORT": "9000"}, "http://127.0.0.1:9000/health/ready"),
        ({"PORT": "9000", "BIND": "127.0.0.1:9100"}, "http://127.0.0.1:9100/health/ready"),
        ({"BIND": "0.0.0.0:9200"}, "http://127.0.0.1:9200/health/ready"),
        ({"BIND": "10.1.2.3:9300"}, "http://10.1.2.3:9300/health/ready"),
        ({"BIND": "[::]:9400"}, "http://127.0.0.1:9400/health/ready"),
        ({"BIND": "[::1]:9500"}, "http://[::1]:9500/health/ready"),
    ],
)
def test_the_probe_asks_where_gunicorn_binds(environment: dict[str, str], url: str) -> None:
    assert probe.ready_url(environment) == url


def test_the_probe_fails_when_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIND", f"127.0.0.1:{free_port()}")
    assert probe.main() == 1
