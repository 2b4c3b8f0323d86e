"""The resolver plug-in (README): chosen by USER_RESOLVER, and a third-party one is really used."""

from __future__ import annotations

from typing import Any

import pytest

from service.app import create_app
from service.config import ConfigError
from tests.dataset import Dataset
from tests.tokens import Tokens

PLUGIN = "tests.plugins.memory_directory:make_directory"


@pytest.fixture
def plugged(config: dict[str, Any]) -> Any:
    return create_app({**config, "USER_RESOLVER": PLUGIN})


def test_a_third_party_resolver_answers_for_callers_and_targets(
    plugged: Any, dataset: Dataset, tokens: Tokens
) -> None:
    client = plugged.test_client()
    # EXT-1 exists only in the plugged directory, not in the database.
    response = client.get("/users/me/encounters", headers=tokens.header("ext-1", "Student"))
    assert response.status_code == 200
    assert {item["CenterReferenceId"] for item in response.get_json()} <= {"C-LIS", "C-POR"}
    assert response.get_json(), "zoe (unit 3, Lisbon) sees Lisbon's unit-3 encounters"
    staff = client.get(
        "/users/zoe@elsewhere.example/encounters", headers=tokens.header("EXT-2", "StaffMember")
    )
    assert staff.status_code == 200 and staff.get_json() == response.get_json()
    directory = plugged.extensions["encounters.resolver"].resolver
    assert [identifier.value for identifier in directory.calls[-1]] == [
        "EXT-2",
        "zoe@elsewhere.example",
    ]


def test_users_of_the_database_are_unknown_to_a_plugged_deployment(
    plugged: Any, dataset: Dataset, tokens: Tokens
) -> None:
    response = plugged.test_client().get("/users/me/encounters", headers=tokens.header("ST-000123"))
    assert response.status_code == 403


def test_a_directory_outage_is_a_503_with_retry_after(
    plugged: Any, dataset: Dataset, tokens: Tokens
) -> None:
    plugged.extensions["encounters.resolver"].resolver.down = True
    response = plugged.test_client().get("/users/me/encounters", headers=tokens.header("EXT-1"))
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-colon", "package.module:factory"),
        ("tests.plugins.nowhere:make", "cannot be loaded"),
        ("tests.plugins.memory_directory:missing", "cannot be loaded"),
        ("tests.plugins.memory_directory:not_a_resolver", "resolve()"),
    ],
)
def test_a_bad_user_resolver_refuses_to_start(
    config: dict[str, Any], spec: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        create_app({**config, "USER_RESOLVER": spec})
    assert message in str(raised.value) and "\n" not in str(raised.value)
