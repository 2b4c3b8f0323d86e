"""Schema fuzzing: schemathesis drives the app from its own /openapi.json, with a valid token.

Every generated request (valid and deliberately invalid path and query values) must be answered
without a 5xx, with a status the document lists for that operation, and with a body that
conforms to the documented schema. FUZZ_EXAMPLES bounds the examples per operation (CI keeps it
small; docs/robustness.md shows the longer run).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.app import create_app
from tests.dataset import USERS, Dataset
from tests.tokens import SECRET, Tokens

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
# A schema-valid request may still be a documented 400: the identifier's rules (printable once
# trimmed) and the window's (from before to, at most 31 days) are more than JSON Schema can say.
# Every other check of schemathesis stays on, and `check` below adds ours.
EXCLUDED = [positive_data_acceptance]
FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("FUZZ_SEED") is None,
)
# Spellings that reach real users, so that the fuzzer also sees 200s and their bodies.
# Every test here also holds the logs to no dataset email, token or secret (tests/conftest.py): the
# known users' emails are among the identifiers sent.
pytestmark = pytest.mark.usefixtures("logs_without_secrets")
KNOWN_IDENTIFIERS = ["me", *(user.reference_id for user in USERS.values())] + [
    user.email for user in USERS.values()
]


@pytest.fixture
def staff_token(tokens: Tokens) -> dict[str, str]:
    """A staff member of Lisbon and Madrid: sees many users, so 200s are common."""
    return {"Authorization": f"Bearer {tokens.mint('SM-1', 'StaffMember')}"}


class CurrentApp:
    """A WSGI app that forwards to the test's app, so one loaded schema serves every test."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.app(environ, start_response)


# The document is the app's own /openapi.json (serving it needs no database); every request then
# goes, over WSGI, to the test's app on a fresh database holding the known dataset.
CURRENT = CurrentApp(create_app({"JWT_SECRET": SECRET, "DATABASE_URL": "sqlite://"}))
schema = schemathesis.openapi.from_wsgi("/openapi.json", CURRENT)
DOCUMENT = schema.raw_schema


def _with_known_identifiers(document: dict[str, Any]) -> dict[str, Any]:
    """The same document, its `userIdentifier` drawn from spellings of real users."""
    document = copy.deepcopy(document)
    for parameter in document["paths"]["/users/{userIdentifier}/encounters"]["parameters"]:
        if parameter["name"] == "userIdentifier":
            parameter["schema"] = {"type": "string", "enum": KNOWN_IDENTIFIERS}
    return document


known_users_schema = schemathesis.openapi.from_dict(_with_known_identifiers(DOCUMENT)).include(
    path_regex="encounters"
)
known_users_schema.app = CURRENT


@pytest.fixture(scope="module", autouse=True)
def request_count() -> Iterator[None]:
    """Say how many requests schemathesis sent (shown with `pytest -s`)."""
    yield
    print(f"\nschemathesis sent {CURRENT.calls} requests ({FUZZ_EXAMPLES} examples per test)")


@pytest.fixture(autouse=True)
def current_app(app: Flask, dataset: Dataset) -> Iterator[Flask]:
    """Point the schemas' WSGI app at this test's app and database."""
    CURRENT.app = app
    yield app


def documented_statuses(case: Any) -> set[int]:
    """The status codes the document names for the operation (never 'default')."""
    return {int(code) for code in case.operation.definition.raw["responses"] if code.isdigit()}


def check(case: Any, response: Any) -> None:
    """What every answer must satisfy beyond schemathesis' checks."""
    assert response.status_code < 500, response.text
    assert response.headers.get("x-request-id")
    if case.method.upper() != case.operation.method.upper():
        # Schemathesis also tries methods the path does not document: Flask answers OPTIONS
        # itself (README: The endpoint) and any other with a 405; both name the allowed methods.
        expected = 200 if case.method.upper() == "OPTIONS" else 405
        assert response.status_code == expected, (case.method, response.status_code)
        assert response.headers.get("allow")
        return
    assert response.status_code in documented_statuses(case), (response.status_code, response.text)


@schema.parametrize()
@FUZZ_SETTINGS
def test_generated_requests_conform(case: Any, staff_token: dict[str, str]) -> None:
    response = case.call_and_validate(headers=staff_token, excluded_checks=EXCLUDED)
    check(case, response)


@known_users_schema.parametrize()
@FUZZ_SETTINGS
def test_known_users_with_generated_queries_conform(case: Any, staff_token: dict[str, str]) -> None:
    response = case.call_and_validate(headers=staff_token, excluded_checks=EXCLUDED)
    check(case, response)
