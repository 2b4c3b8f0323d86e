"""Who may call it (README) over HTTP: 403 for the wrong caller, the same 404 for "missing" and "not yours"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from tests.dataset import Dataset
from tests.tokens import Tokens


@pytest.mark.parametrize(
    ("caller", "role", "path", "status"),
    [
        ("ST-000123", "Student", "/users/me/encounters", 200),
        ("ST-000123", "Student", "/users/ST-000123/encounters", 200),
        ("ST-000123", "Student", "/users/bruno@example.com/encounters", 404),
        ("ST-000123", "Student", "/users/SM-1/encounters", 404),
        ("SM-1", "StaffMember", "/users/ST-000123/encounters", 200),  # shares Lisbon
        ("SM-1", "StaffMember", "/users/ST%2F2026%2F7/encounters", 404),  # bruno is in Porto
        ("SM-2", "StaffMember", "/users/ST%2F2026%2F7/encounters", 200),
        ("SM-2", "StaffMember", "/users/SM-1/encounters", 404),  # no common center
        ("SM-1", "StaffMember", "/users/me/encounters", 200),
        ("SM-1", "StaffMember", "/users/no-such-user/encounters", 404),
        # Rule 1: token role and directory role must agree.
        ("ST-000123", "StaffMember", "/users/me/encounters", 403),
        ("SM-1", "Student", "/users/SM-1/encounters", 403),
        ("ST-000123", "Teacher", "/users/me/encounters", 403),
        ("ST-000123", ["Teacher", "student"], "/users/me/encounters", 200),
        ("ST-000123", [], "/users/me/encounters", 403),
        ("ST-000123", None, "/users/me/encounters", 403),
        ("nobody@example.com", "Student", "/users/me/encounters", 403),
        ("me", "Student", "/users/me/encounters", 403),  # `me` names no one as a subject
        ("no-such-user", "StaffMember", "/users/ST-000123/encounters", 403),
        # The subject may be any spelling of an identifier (README).
        ("ana.lima@EXAMPLE.com", "Student", "/users/me/encounters", 200),
        ("email:ana.lima@example.com", "Student", "/users/me/encounters", 200),
        ("ref:ST-000123", "Student", "/users/ST-000123/encounters", 200),
    ],
)
def test_who_may_call(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    caller: str,
    role: object,
    path: str,
    status: int,
) -> None:
    response = client.get(path, headers=tokens.header(caller, role))
    assert response.status_code == status, response.get_json()
    if status >= 400:
        assert response.content_type == "application/problem+json"
        assert response.get_json()["status"] == status


def test_the_subject_may_be_the_users_guid(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    for spelling in (str(dataset["ana"]), dataset["ana"].hex.upper(), f"{{{dataset['ana']}}}"):
        assert (
            client.get("/users/me/encounters", headers=tokens.header(spelling)).status_code == 200
        )


@pytest.mark.parametrize(
    ("kinds", "accepted"),
    [
        ("id", {"guid", "guid-n", "id:guid"}),
        ("id,email", {"guid", "guid-n", "id:guid", "email", "email:email"}),
        ("id,email,ref", {"guid", "guid-n", "id:guid", "email", "email:email", "ref", "ref:ref"}),
    ],
)
def test_subject_kinds_narrow_what_a_subject_may_be(
    config: dict[str, Any], dataset: Dataset, tokens: Tokens, kinds: str, accepted: set[str]
) -> None:
    """An email or a reference id can pass to another user (load-data reassigns it): a GUID never.

    With JWT_SUBJECT_KINDS=id a token follows its user, not whoever holds that email next.
    """
    ana = str(dataset["ana"])
    subjects = {
        "guid": ana, "guid-n": dataset["ana"].hex.upper(), "id:guid": f"id:{ana}",
        "email": "ana.lima@example.com", "email:email": "email:ana.lima@example.com",
        "ref": "ST-000123", "ref:ref": "ref:ST-000123",
    }  # fmt: skip
    client = create_app({**config, "JWT_SUBJECT_KINDS": kinds}).test_client()
    for name, subject in subjects.items():
        response = client.get("/users/me/encounters", headers=tokens.header(subject))
        assert response.status_code == (200 if name in accepted else 403), name


def test_missing_and_not_yours_are_byte_identical_but_for_the_request_id(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    staff = tokens.header("SM-1", "StaffMember")
    answers = [
        client.get(path, headers=staff)
        for path in (
            "/users/ST%2F2026%2F7/encounters",  # exists, other center
            "/users/nobody-at-all/encounters",  # does not exist
            "/users/bruno@example.com/encounters",
            "/users/ghost@example.com/encounters",
            f"/users/{'0' * 32}/encounters",
            "/users/SM-2/encounters",
        )
    ]
    assert {r.status_code for r in answers} == {404}
    texts = [r.get_data(as_text=True) for r in answers]
    ids = [json.loads(t)["request_id"] for t in texts]
    stripped = {t.replace(i, "") for t, i in zip(texts, ids, strict=True)}
    assert len(stripped) == 1, stripped
    headers = [
        sorted((k, v) for k, v in r.headers.items() if k not in {"X-Request-ID"}) for r in answers
    ]
    assert all(h == headers[0] for h in headers)
    assert "bruno" not in texts[0] and "ST/2026/7" not in texts[0]
