"""What a new user tripped on (issue 13): each answer says what to do, and says it one way."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.dataset import Dataset
from tests.tokens import Tokens


@pytest.mark.parametrize("parameter", ["from", "to"])
def test_an_unencoded_plus_in_an_offset_says_to_send_2b(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, parameter: str
) -> None:
    # `+` in a query string is a space: `?from=2026-12-03T00:00:00+01:00` sent as written.
    response = client.get(
        f"/users/me/encounters?{parameter}=2026-12-03T00:00:00+01:00", headers=tokens.header()
    )
    assert response.status_code == 400
    (message,) = response.get_json()["errors"][parameter]
    assert "%2B" in message


def test_the_encoded_plus_is_accepted(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    response = client.get(
        "/users/me/encounters?from=2026-12-03T00:00:00%2B01:00", headers=tokens.header()
    )
    assert response.status_code == 200


def test_allow_lists_the_methods_in_one_order(client: FlaskClient, tokens: Tokens) -> None:
    assert client.options("/users/me/encounters").headers["Allow"] == "GET, HEAD, OPTIONS"
    wrong_method = client.delete("/users/me/encounters", headers=tokens.header())
    assert wrong_method.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_the_document_names_no_unused_pagination_schema(app: Flask) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    assert set(document["components"]["schemas"]) == {"Problem", "Encounter"}
