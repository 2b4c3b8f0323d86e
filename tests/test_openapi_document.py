"""The OpenAPI document, as callers build against it: valid OpenAPI 3.0.3, and a generator's input.

Swagger UI and schemathesis take an invalid document without a word; a caller's generator does
not (openapi-python-client refused the document whose 200 had lost its description).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator, validate

from service.app import create_app
from tests.tokens import SECRET

ENDPOINT = "/users/{userIdentifier}/encounters"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The served /openapi.json (serving it needs no database)."""
    app = create_app({"JWT_SECRET": SECRET, "DATABASE_URL": "sqlite://"})
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def test_the_served_document_is_valid_openapi_3_0_3(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.0.3"
    validate(document, cls=OpenAPIV30SpecValidator)


def test_every_response_keeps_its_description_and_examples(document: dict[str, Any]) -> None:
    named = document["components"]["responses"]
    responses = document["paths"][ENDPOINT]["get"]["responses"]
    listed = responses["200"]
    assert listed["description"] == "The encounters, by start then Id."
    assert set(listed["content"]) == {"application/json", "text/json"}
    assert set(listed["headers"]) == {"ETag", "Cache-Control"}
    assert responses["304"]["description"].startswith("Not Modified")
    problems = {status: ref["$ref"].rsplit("/", 1)[1] for status, ref in responses.items()
                if "$ref" in ref}  # fmt: skip
    assert problems == {
        "400": "InvalidParameters",
        "401": "Unauthenticated",
        "403": "Forbidden",
        "404": "NotFound",
        "406": "NotAcceptable",
        "503": "Unavailable",
    }
    for status, name in problems.items():
        example = named[name]["content"]["application/problem+json"]["example"]
        assert named[name]["description"] and example["status"] == int(status)


def test_a_python_client_generates_from_it(document: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document))
    output = tmp_path / "generated"
    # The generator formats its output with ruff, which it finds on PATH (the venv's).
    environment = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"}
    command = [GENERATOR, "generate", "--path", path, "--output-path", output]
    command += ["--meta", "none", "--fail-on-warning"]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    model = (output / "models" / "encounter.py").read_text()
    assert "center_reference_id: str" in model
    assert (output / "api" / "encounters" / "get_users_user_identifier_encounters.py").is_file()
