"""One round trip: the default resolver reads a student's list in its own statement (PostgreSQL).

`DatabaseUserResolver.resolve_listing` must answer exactly what `resolve` and then
`encounters_json` answer: the same users, and the same body for a student target, whoever the
caller, however the target is named, whatever the window, unit and online filter; and no body
for a staff member, for nobody, or off PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert

from service.directory import Role, resolve_listing
from service.encounters import ListQuery, Window, encounters_json
from service.identifiers import UserIdentifier, parse_identifier
from service.models import StaffAssignment, User, lookup_key
from service.resolvers import DatabaseUserResolver
from tests.database import backend_name
from tests.dataset import BASE, USERS, Dataset
from tests.tokens import Tokens

pytestmark = pytest.mark.skipif(
    backend_name() != "postgresql", reason="the list is read along on PostgreSQL only"
)

WINDOWS = [
    Window(BASE - timedelta(hours=1), BASE + timedelta(days=7)),
    Window(BASE - timedelta(days=5), BASE + timedelta(days=25)),
    Window(BASE + timedelta(hours=23), BASE + timedelta(hours=25)),
]
FILTERS = [(None, None), (3, None), (4, None), (None, True), (None, False), (3, False)]


@pytest.fixture
def odd_students(engine: Engine, dataset: Dataset) -> list[str]:
    """Students the dataset lacks: no center; a center and a staff assignment besides."""
    assigned = uuid.uuid4()
    with engine.begin() as connection:
        for reference, center in (("ST-NOCENTER", None), ("ST-ASSIGNED", dataset["lisbon"])):
            connection.execute(
                insert(User).values(
                    id=assigned if center else uuid.uuid4(),
                    email=f"{reference.lower()}@example.com",
                    email_key=lookup_key(f"{reference.lower()}@example.com"),
                    reference_id=reference,
                    reference_key=lookup_key(reference),
                    role=Role.STUDENT,
                    center_id=center,
                    current_unit=3,
                )
            )
        connection.execute(
            insert(StaffAssignment).values(user_id=assigned, center_id=dataset["porto"])
        )
    return ["ST-NOCENTER", "ST-ASSIGNED"]


def _names(users: list[str]) -> list[UserIdentifier]:
    """Each user by reference id, by email, by id; and somebody unknown."""
    found = []
    for reference in users:
        found.append(parse_identifier(f"ref:{reference}"))
    found += [parse_identifier(row.email) for row in USERS.values()]
    found.append(parse_identifier("nobody@example.com"))
    return found


def test_the_list_read_along_is_the_list_read_after(
    app: Flask, dataset: Dataset, odd_students: list[str]
) -> None:
    references = [row.reference_id for row in USERS.values()] + odd_students
    resolver = DatabaseUserResolver()
    checked = {"student": 0, "other": 0}
    with app.app_context():
        for target in _names(references):
            for identifiers in ([target], [parse_identifier("SM-1"), target]):
                for window in WINDOWS:
                    for unit, online in FILTERS:
                        listing = ListQuery(window, unit, online)
                        users, body = resolver.resolve_listing(identifiers, listing)
                        assert users == resolver.resolve(identifiers)
                        found = users[-1]
                        if found is not None and found.role is Role.STUDENT:
                            assert body == encounters_json(found, window, unit, online), (
                                found.reference_id,
                                listing,
                            )
                            checked["student"] += 1
                        else:
                            assert body is None
                            checked["other"] += 1
    # Lists of every kind were compared: empty, and not.
    assert checked["student"] > 300 and checked["other"] > 50


def test_a_resolver_without_it_is_asked_resolve_alone(app: Flask, dataset: Dataset) -> None:
    class Plain:
        def __init__(self) -> None:
            self.calls: list[Any] = []

        def resolve(self, identifiers: Any) -> list[Any]:
            self.calls.append(identifiers)
            return DatabaseUserResolver().resolve(identifiers)

    plain = Plain()
    with app.app_context():
        users, body = resolve_listing(plain, [parse_identifier("ST-000123")], ListQuery(WINDOWS[0]))
    assert body is None and users[0] is not None and len(plain.calls) == 1


def test_a_refused_list_read_along_never_leaves(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    # SM-2 (Porto) asks for Ana (Lisbon): her list is read in the resolver's statement, and
    # the answer is still the 404 that reveals nothing.
    response = client.get(
        "/users/ST-000123/encounters", headers=tokens.header("SM-2", "StaffMember")
    )
    assert response.status_code == 404
    assert b"Lisbon" not in response.data and b"DateTime" not in response.data
