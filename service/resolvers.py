"""The default user resolver: the service's own `users` and `staff_centers` tables.

The interface it implements, and that a third-party resolver implements instead, is in
`service.directory`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from flask import Flask
from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, or_, select

from service.db import db
from service.directory import DirectoryUser, Role, UserResolver
from service.identifiers import IdentifierKind, UserIdentifier
from service.models import StaffAssignment, User, lookup_key


class DatabaseUserResolver:
    """The default resolver: the service's own `users` and `staff_centers` tables."""

    def resolve(self, identifiers: Sequence[UserIdentifier]) -> list[DirectoryUser | None]:
        """Look every identifier up in one statement; each condition is an index lookup."""
        if not identifiers:
            return []
        statement = _statement(tuple(identifier.kind for identifier in identifiers))
        parameters = {
            f"key_{position}": _lookup_value(identifier)
            for position, identifier in enumerate(identifiers)
        }
        users: dict[uuid.UUID, tuple[str, str, Role, int | None]] = {}
        centers: dict[uuid.UUID, set[uuid.UUID]] = {}
        for row in db.read(statement, parameters):
            user_id, email, reference_id, role, own_center, current_unit, assigned_center = row
            # Role(): PostgreSQL's driver gives the enum's text (service.db: `_run`).
            users[user_id] = (email, reference_id, Role(role), current_unit)
            own = centers.setdefault(user_id, set())
            if own_center is not None:
                own.add(own_center)
            if assigned_center is not None:
                own.add(assigned_center)
        found = [
            DirectoryUser(
                id=user_id,
                email=email,
                reference_id=reference_id,
                role=role,
                center_ids=frozenset(centers[user_id]),
                current_unit=current_unit,
            )
            for user_id, (email, reference_id, role, current_unit) in users.items()
        ]
        return [_match(identifier, found) for identifier in identifiers]


_LOOKUP_COLUMNS = {
    IdentifierKind.ID: User.id,
    IdentifierKind.EMAIL: User.email_key,
    IdentifierKind.REFERENCE: User.reference_key,
}


@functools.cache
def _statement(kinds: tuple[IdentifierKind, ...]) -> Select:
    """Built once per combination of kinds, so SQLAlchemy reuses its compiled form."""
    condition = or_(
        *(_condition(kind, bindparam(f"key_{position}")) for position, kind in enumerate(kinds))
    )
    return (
        select(
            User.id,
            User.email,
            User.reference_id,
            User.role,
            User.center_id,
            User.current_unit,
            StaffAssignment.center_id,
        )
        .outerjoin(StaffAssignment, StaffAssignment.user_id == User.id)
        .where(condition)
    )


def _condition(kind: IdentifierKind, key: BindParameter[Any]) -> ColumnElement[bool]:
    # No ME: the view resolves `me` to the caller's own identifier before it gets here.
    return _LOOKUP_COLUMNS[kind] == key


def _lookup_value(identifier: UserIdentifier) -> object:
    if identifier.kind is IdentifierKind.ID:
        return identifier.user_id
    return lookup_key(identifier.value)


def _match(identifier: UserIdentifier, users: list[DirectoryUser]) -> DirectoryUser | None:
    key = lookup_key(identifier.value)
    for user in users:
        if identifier.kind is IdentifierKind.ID and user.id == identifier.user_id:
            return user
        if identifier.kind is IdentifierKind.EMAIL and lookup_key(user.email) == key:
            return user
        if identifier.kind is IdentifierKind.REFERENCE and lookup_key(user.reference_id) == key:
            return user
    return None


def database_resolver(app: Flask) -> UserResolver:
    """The factory `USER_RESOLVER` names by default."""
    return DatabaseUserResolver()
