"""Swagger UI at /docs with its assets served locally, and an OpenAPI document that tells the
truth: the bearer scheme for "Authorize", and every status of the endpoint."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.dataset import Dataset
from tests.tokens import Tokens

ENDPOINT = "/users/{userIdentifier}/encounters"


def test_docs_page_loads_only_local_assets(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references, "the page should load swagger-ui's script and stylesheet"
    for reference in references:
        assert reference.startswith("/docs/assets/"), f"{reference} is not served by the service"
    assert "//" not in "".join(references)
    for reference in references:
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert len(asset.data) > 1000


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui-standalone-preset.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
    ],
)
def test_assets_are_served_with_their_types(client: FlaskClient, name: str, mimetype: str) -> None:
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert "max-age" in response.headers["Cache-Control"]


@pytest.mark.parametrize(
    "path", ["/docs/assets/nothing.js", "/docs/assets/../../__init__.py", "/docs/assets/%2e%2e/x"]
)
def test_unknown_or_escaping_asset_paths_are_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_openapi_declares_the_bearer_scheme_for_the_endpoint(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    operation = document["paths"][ENDPOINT]["get"]
    assert operation["security"] == [{"bearerAuth": []}]
    # The probes stay open: an orchestrator has no token.
    assert "security" not in document["paths"]["/health/ready"]["get"]
    assert "security" not in document


def test_openapi_documents_every_status_of_the_endpoint(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    responses = _documented_responses(client)
    statuses = set(responses) - {"default"}
    assert statuses == {"200", "304", "400", "401", "403", "404", "406", "503"}
    for status in statuses - {"200", "304"}:
        content = responses[status]["content"]
        assert set(content) == {"application/problem+json"}, status
    parameters = document["paths"][ENDPOINT]["parameters"]
    assert [p["name"] for p in parameters if p["in"] == "path"] == ["userIdentifier"]


def test_readiness_documents_its_503(client: FlaskClient) -> None:
    responses = client.get("/openapi.json").get_json()["paths"]["/health/ready"]["get"]["responses"]
    assert {"200", "503"} <= set(responses)


def test_every_reference_in_the_document_resolves(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()

    def references(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in references(value)]
        if isinstance(node, list):
            return [r for value in node for r in references(value)]
        return []

    found = references(document)
    assert found
    for reference in found:
        target: object = document
        for part in reference.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"{reference} does not resolve"
            target = target[part]


def _documented_responses(client: FlaskClient) -> dict[str, Any]:
    """The endpoint's responses by status, each named component reference followed."""
    document = client.get("/openapi.json").get_json()
    components = document["components"].get("responses", {})
    return {
        status: components[response["$ref"].removeprefix("#/components/responses/")]
        if "$ref" in response
        else response
        for status, response in document["paths"][ENDPOINT]["get"]["responses"].items()
    }


def _documented_example(client: FlaskClient, status: int) -> dict[str, object]:
    response = _documented_responses(client)[str(status)]
    example: dict[str, object] = response["content"]["application/problem+json"]["example"]
    return example


def _real_problems(tokens: Tokens) -> dict[int, tuple[dict[str, str], str]]:
    """A request for each documented error status, as a caller would make it."""
    student = tokens.header()
    return {
        400: (student, "/users/me/encounters?unit=x"),
        401: ({"Authorization": f"Bearer {tokens.mint(exp=int(time.time()) - 60)}"}, ""),
        403: (tokens.header(role="Teacher"), ""),
        404: (student, "/users/SM-1/encounters"),
        406: ({**student, "Accept": "text/html"}, ""),
    }


@pytest.mark.parametrize("status", [400, 401, 403, 404, 406])
def test_documented_error_examples_are_what_the_service_sends(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, status: int
) -> None:
    headers, path = _real_problems(tokens)[status]
    response = client.get(path or "/users/me/encounters", headers=headers)
    assert response.status_code == status
    body = response.get_json()
    example = _documented_example(client, status)
    assert set(example) == set(body)
    assert {k: v for k, v in example.items() if k != "request_id"} == {
        k: v for k, v in body.items() if k != "request_id"
    }


def test_documented_503_example_has_the_problem_shape_and_its_header(client: FlaskClient) -> None:
    example = _documented_example(client, 503)
    assert example["status"] == 503 and example["title"] == "Service Unavailable"
    assert set(example) == {"type", "title", "status", "detail", "request_id"}
    responses = _documented_responses(client)
    assert "Retry-After" in responses["503"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]
