"""The Python client (clients/python) held to the OpenAPI document: a drift of either fails here.

`Encounter`'s fields are the documented properties (in snake_case, in order, with their types),
and every named problem response of the endpoint is the client's error class of that name.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import typing
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from encounters_client import Encounter, EncountersError, InvalidParameters, Unavailable
from encounters_client.errors import ERROR_BY_STATUS
from encounters_client.models import wire_name

from service.app import create_app
from tests.tokens import SECRET

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "/users/{userIdentifier}/encounters"
# JSON Schema (type, format) → the Python type the client gives.
PYTHON_TYPES: dict[tuple[str, str | None], Any] = {
    ("integer", None): int,
    ("boolean", None): bool,
    ("string", None): str,
    ("string", "uuid"): UUID,
    ("string", "date-time"): datetime,
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The served /openapi.json."""
    app = create_app({"JWT_SECRET": SECRET, "DATABASE_URL": "sqlite://"})
    body: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    return body


def test_encounter_has_the_documented_properties_in_order(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Encounter"]
    fields = [wire_name(field.name) for field in dataclasses.fields(Encounter)]
    assert fields == list(schema["properties"])
    assert set(schema["required"]) == set(fields)


def test_encounter_fields_have_the_documented_types(document: dict[str, Any]) -> None:
    properties = document["components"]["schemas"]["Encounter"]["properties"]
    hints = typing.get_type_hints(Encounter)
    for field in dataclasses.fields(Encounter):
        documented = properties[wire_name(field.name)]
        if "enum" in documented:
            assert typing.get_args(hints[field.name]) == tuple(documented["enum"]), field.name
        else:
            expected = PYTHON_TYPES[documented["type"], documented.get("format")]
            assert hints[field.name] is expected, field.name


def test_every_named_problem_is_the_error_class_of_that_name(document: dict[str, Any]) -> None:
    responses = document["paths"][ENDPOINT]["get"]["responses"]
    named = {int(status): response["$ref"].rsplit("/", 1)[1]
             for status, response in responses.items() if "$ref" in response}  # fmt: skip
    assert {status: error.__name__ for status, error in ERROR_BY_STATUS.items()} == named
    assert all(issubclass(error, EncountersError) for error in ERROR_BY_STATUS.values())


def test_the_errors_carry_the_documented_details(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]["properties"]
    base = _arguments(EncountersError)
    assert base == ["status", "title", "detail", "request_id"]
    assert set(base) <= set(problem)
    assert _arguments(InvalidParameters) == [*base, "errors"]
    assert "errors" in problem
    example = document["components"]["responses"]["InvalidParameters"]["content"]
    assert example["application/problem+json"]["example"]["errors"]
    assert _arguments(Unavailable) == [*base, "retry_after"]
    assert "Retry-After" in document["components"]["responses"]["Unavailable"]["headers"]


def _arguments(error: type[EncountersError]) -> list[str]:
    return list(inspect.signature(error.__init__).parameters)[1:]


def test_the_service_never_imports_the_client() -> None:
    """The client serves callers; the app (and its CLI) must run without it installed."""
    check = "import sys, wsgi, service.admin.cli; sys.exit('encounters_client' in sys.modules)"
    environment = {**os.environ, "JWT_SECRET": SECRET, "DATABASE_URL": "sqlite://"}
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=environment, timeout=60)
    assert done.returncode == 0
    sources = [*(ROOT / "service").rglob("*.py"), *(ROOT / "schemas").rglob("*.py")]
    assert not [path for path in sources if "encounters_client" in path.read_text()]
