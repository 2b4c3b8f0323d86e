"""Property tests of the identifier parser (README), on its own and through the endpoint.

Every string parses to exactly one kind or raises InvalidIdentifier (the documented 400);
no other exception escapes. GUIDs round-trip in every spelling .NET's Guid.Parse takes.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from service.identifiers import (
    MAX_LENGTH,
    IdentifierKind,
    InvalidIdentifier,
    UserIdentifier,
    parse_identifier,
)
from tests.dataset import USERS, Dataset
from tests.tokens import Tokens

# Every test here also holds the logs to no dataset email, token or secret (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("logs_without_secrets")
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SPACE = st.text(alphabet=" \t\n\r\u00a0\u3000", max_size=3)
# Printable, non-blank text without '@' (nor U+FFFD, the mark of invalid UTF-8): a reference id.
plain = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S"], exclude_characters="@\ufffd"),
    min_size=1,
    max_size=40,
)


def guid_spellings(value: uuid.UUID) -> st.SearchStrategy[str]:
    """D, N, B and P spellings of a GUID, each letter in either case."""
    formats = [str(value), value.hex, f"{{{value}}}", f"({value})"]
    return st.sampled_from(formats).flatmap(
        lambda text: st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
            lambda upper: "".join(c.upper() if u else c for c, u in zip(text, upper, strict=True))
        )
    )


def parse_or_none(text: str) -> UserIdentifier | None:
    """The parsed identifier, or None for the documented InvalidIdentifier; nothing else."""
    try:
        return parse_identifier(text)
    except InvalidIdentifier:
        return None


@PROPERTY_SETTINGS
@given(st.text())
@example("")
@example("\x00")
@example("id:")
@example("ref:")
@example("x" * (MAX_LENGTH + 1))
@example("\ud800")
def test_every_string_is_one_kind_or_invalid(text: str) -> None:
    parsed = parse_or_none(text)
    if parsed is None:
        return
    assert isinstance(parsed.kind, IdentifierKind)
    assert parsed.value and parsed.value.isprintable() and len(parsed.value) <= MAX_LENGTH
    assert "\ufffd" not in parsed.value
    if parsed.kind is IdentifierKind.ID:
        assert parsed.value == str(uuid.UUID(parsed.value))


@PROPERTY_SETTINGS
@given(st.text(), SPACE, SPACE)
def test_surrounding_white_space_is_ignored(text: str, before: str, after: str) -> None:
    assert parse_or_none(before + text + after) == parse_or_none(text)


@PROPERTY_SETTINGS
@given(st.uuids().flatmap(lambda u: st.tuples(st.just(u), guid_spellings(u))))
def test_every_guid_spelling_round_trips(pair: tuple[uuid.UUID, str]) -> None:
    value, spelling = pair
    expected = UserIdentifier(IdentifierKind.ID, str(value))
    assert parse_identifier(spelling) == expected
    assert parse_identifier(f"id:{spelling}") == expected
    assert parse_identifier(f"ref:{spelling}") == UserIdentifier(IdentifierKind.REFERENCE, spelling)


@PROPERTY_SETTINGS
@given(plain, plain)
def test_one_at_with_text_on_both_sides_is_an_email(local: str, domain: str) -> None:
    text = f"{local}@{domain}"
    assume(len(text) <= MAX_LENGTH and text == text.strip())
    assume(not text.startswith(("id:", "email:", "ref:")))
    assert parse_identifier(text) == UserIdentifier(IdentifierKind.EMAIL, text)
    assert parse_identifier(f"ref:{text}") == UserIdentifier(IdentifierKind.REFERENCE, text)


@PROPERTY_SETTINGS
@given(plain)
def test_explicit_kinds_force_the_kind(text: str) -> None:
    assume(text == text.strip())
    for prefix, kind in (("email:", IdentifierKind.EMAIL), ("ref:", IdentifierKind.REFERENCE)):
        if len(prefix + text) <= MAX_LENGTH:
            assert parse_identifier(prefix + text) == UserIdentifier(kind, text)
    assert parse_identifier("ref:me") == UserIdentifier(IdentifierKind.REFERENCE, "me")


@PROPERTY_SETTINGS
@given(st.text(min_size=1))
def test_an_explicit_id_that_is_no_guid_is_invalid(text: str) -> None:
    try:
        uuid.UUID(text.strip())
    except ValueError:
        with pytest.raises(InvalidIdentifier):
            parse_identifier(f"id:{text}")


@PROPERTY_SETTINGS
@given(plain, st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), plain)
def test_control_characters_inside_are_invalid(head: str, control: str, tail: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_identifier(head + control + tail)


@PROPERTY_SETTINGS
@given(st.integers(min_value=MAX_LENGTH + 1, max_value=4 * MAX_LENGTH))
def test_longer_than_the_limit_is_invalid(length: int) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_identifier("x" * length)
    assert parse_identifier("x" * MAX_LENGTH).kind is IdentifierKind.REFERENCE


@pytest.fixture
def staff_header(tokens: Tokens) -> dict[str, str]:
    """Rui, staff of Lisbon and Madrid."""
    return tokens.header("SM-1", "StaffMember")


@PROPERTY_SETTINGS
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=300))
def test_any_identifier_over_http_is_a_400_or_an_answer(
    client: FlaskClient, dataset: Dataset, staff_header: dict[str, str], text: str
) -> None:
    response = client.get(f"/users/{quote(text, safe='')}/encounters", headers=staff_header)
    assert response.status_code in (200, 400, 404), response.get_data(as_text=True)
    if parse_or_none(text) is None:
        assert response.status_code == 400, repr(text)
        assert list(response.get_json()["errors"]) == ["userIdentifier"]
    else:
        assert response.status_code in (200, 404)


@pytest.mark.parametrize("name", sorted(USERS))
def test_dataset_emails_in_the_path_answer_as_their_reference_ids(
    client: FlaskClient, dataset: Dataset, staff_header: dict[str, str], name: str
) -> None:
    """A real email, however spelled, names its user; and no spelling reaches a log line."""
    user = USERS[name]
    by_reference = client.get(f"/users/ref:{quote(user.reference_id, safe='')}/encounters",
                              headers=staff_header)  # fmt: skip
    for spelling in (user.email, user.email.upper(), f" {user.email} ", f"email:{user.email}"):
        for path in (
            f"/users/{spelling}/encounters",
            f"/users/{quote(spelling, safe='')}/encounters",
        ):
            response = client.get(path, headers=staff_header)
            assert response.status_code == by_reference.status_code, path
            assert response.get_data() == by_reference.get_data() or response.status_code == 404
