"""The stub server of a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stub import Stub


@pytest.fixture
def stub() -> Iterator[Stub]:
    """A running stub server, stopped after the test."""
    server = Stub().start()
    yield server
    server.stop()
