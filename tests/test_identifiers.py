"""Every spelling of `{userIdentifier}` (README: The user identifier), and every malformed one."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from service.identifiers import IdentifierKind, InvalidIdentifier, parse_identifier
from tests.dataset import Dataset
from tests.tokens import Tokens

ANA = "8b8a4f8e-ac2a-5f4b-9f0e-000000000000"  # replaced by the real id in the tests


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("93ccd5ee-700e-4fff-857f-0905ff5ebff2", IdentifierKind.ID, "93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        ("93CCD5EE-700E-4FFF-857F-0905FF5EBFF2", IdentifierKind.ID, "93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        ("93CCD5EE700E4FFF857F0905FF5EBFF2", IdentifierKind.ID, "93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        ("{93ccd5ee-700e-4fff-857f-0905ff5ebff2}", IdentifierKind.ID, "93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        ("(93ccd5ee-700e-4fff-857f-0905ff5ebff2)", IdentifierKind.ID, "93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        ("  93ccd5ee-700e-4fff-857f-0905ff5ebff2\t", IdentifierKind.ID, "93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        # Not one of .NET's D/N/B/P formats: a reference id, not a GUID.
        ("{93ccd5ee-700e-4fff-857f-0905ff5ebff2)", IdentifierKind.REFERENCE, "{93ccd5ee-700e-4fff-857f-0905ff5ebff2)"),
        ("{93ccd5ee700e4fff857f0905ff5ebff2}", IdentifierKind.REFERENCE, "{93ccd5ee700e4fff857f0905ff5ebff2}"),
        ("urn:uuid:93ccd5ee-700e-4fff-857f-0905ff5ebff2", IdentifierKind.REFERENCE, "urn:uuid:93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        ("93ccd5ee-700e4fff-857f-0905ff5ebff2", IdentifierKind.REFERENCE, "93ccd5ee-700e4fff-857f-0905ff5ebff2"),
        ("93ccd5ee-700e-4fff-857f-0905ff5ebffg", IdentifierKind.REFERENCE, "93ccd5ee-700e-4fff-857f-0905ff5ebffg"),
        ("Ana.Lima@example.com", IdentifierKind.EMAIL, "Ana.Lima@example.com"),
        ("a@b", IdentifierKind.EMAIL, "a@b"),
        ("a@b@c", IdentifierKind.REFERENCE, "a@b@c"),
        ("@example.com", IdentifierKind.REFERENCE, "@example.com"),
        ("ana@", IdentifierKind.REFERENCE, "ana@"),
        ("ST-000123", IdentifierKind.REFERENCE, "ST-000123"),
        ("ST/2026/7", IdentifierKind.REFERENCE, "ST/2026/7"),
        ("me", IdentifierKind.ME, "me"),
        ("ME", IdentifierKind.REFERENCE, "ME"),
        ("ref:me", IdentifierKind.REFERENCE, "me"),
        ("ref:93ccd5ee700e4fff857f0905ff5ebff2", IdentifierKind.REFERENCE, "93ccd5ee700e4fff857f0905ff5ebff2"),
        ("ref:odd@reference", IdentifierKind.REFERENCE, "odd@reference"),
        ("email:ana@example.com", IdentifierKind.EMAIL, "ana@example.com"),
        ("id:{93ccd5ee-700e-4fff-857f-0905ff5ebff2}", IdentifierKind.ID, "93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        ("REF:x", IdentifierKind.REFERENCE, "REF:x"),
    ],
)  # fmt: skip
def test_parse(raw: str, kind: IdentifierKind, value: str) -> None:
    identifier = parse_identifier(raw)
    assert (identifier.kind, identifier.value) == (kind, value)


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "x" * 255, "a\x00b", "a\x1fb", "a\x7fb", "line\nbreak", "id:", "ref:", "email:",
     "id:nope", "id:93ccd5ee-700e-4fff-857f-0905ff5ebff", "id:urn:uuid:93ccd5ee-700e-4fff-857f-0905ff5ebff2"],
)  # fmt: skip
def test_malformed(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_identifier(raw)


def test_254_characters_is_the_limit() -> None:
    assert parse_identifier("x" * 254).kind is IdentifierKind.REFERENCE


SPELLINGS = {
    # name of the target in the dataset: the spellings that must find them
    "ana": [
        "{id}", "{ID}", "{id_n}", "{ID_N}", "{{{id}}}", "({ID})", "id:{id}", "id:{id_n}",
        "Ana.Lima@example.com", "ana.lima@EXAMPLE.com", "email:ANA.LIMA@example.com",
        "ST-000123", "st-000123", "ref:ST-000123", "%20ST-000123%20", "me",
    ],
    "bruno": ["ST%2F2026%2F7", "st%2f2026%2f7", "ref:ST%2F2026%2F7"],
    "meref": ["ref:me", "ref:ME"],
    "guidref": ["ref:1b4e28ba2fa111d2883f0016d3cca427", "ref:1B4E28BA2FA111D2883F0016D3CCA427"],
    "atref": ["ref:odd@reference"],
}  # fmt: skip
CASES = [(name, spelling) for name, spellings in SPELLINGS.items() for spelling in spellings]


@pytest.mark.parametrize(("name", "spelling"), CASES)
def test_every_spelling_finds_the_user_over_http(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, name: str, spelling: str
) -> None:
    target = dataset[name]
    path_segment = spelling.format(
        id=target, ID=str(target).upper(), id_n=target.hex, ID_N=target.hex.upper()
    )
    # Rui (staff, Lisbon and Madrid) may see ana, meref, guidref and atref; sara (Porto) bruno.
    caller = ("SM-2", "StaffMember") if name == "bruno" else ("SM-1", "StaffMember")
    if spelling == "me":
        caller = ("ST-000123", "Student")
    response = client.get(f"/users/{path_segment}/encounters", headers=tokens.header(*caller))
    assert response.status_code == 200, (spelling, response.get_json())
    reference = client.get(f"/users/id:{target}/encounters", headers=tokens.header(*caller))
    assert response.get_data() == reference.get_data()


def test_a_guid_shaped_reference_id_is_taken_as_a_guid_without_the_ref_prefix(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    response = client.get(
        "/users/1b4e28ba2fa111d2883f0016d3cca427/encounters",
        headers=tokens.header("SM-1", "StaffMember"),
    )
    assert response.status_code == 404  # no user has that *id*


@pytest.mark.parametrize(
    "segment",
    ["%00", "a%01b", "%7F", "a%0Ab", "x" * 255, "%20%20", "id:not-a-guid", "id:", "ref:%20", ""],
)
def test_malformed_identifiers_are_400_before_any_database_work(
    client: FlaskClient, app, dataset: Dataset, tokens: Tokens, segment: str
) -> None:  # type: ignore[no-untyped-def]
    from service.db import db

    statements: list[str] = []
    with app.app_context():
        engine: Engine = db.engine

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(f"/users/{segment}/encounters", headers=tokens.header())
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 400
    body = response.get_json()
    assert response.content_type == "application/problem+json"
    assert list(body["errors"]) == ["userIdentifier"]
    assert statements == []


def test_an_email_matches_only_an_email_and_a_reference_only_a_reference(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    staff = tokens.header("SM-1", "StaffMember")
    assert (
        client.get("/users/ref:Ana.Lima@example.com/encounters", headers=staff).status_code == 404
    )
    assert client.get("/users/email:ST-000123/encounters", headers=staff).status_code == 404
    assert client.get(f"/users/ref:{dataset['ana']}/encounters", headers=staff).status_code == 404
