"""Turning identifiers into users: the pluggable resolver interface and its database default.

A resolver is any object with one method, `resolve(identifiers)`, that takes a sequence of
`UserIdentifier` (never of kind ME: the view substitutes the caller) and returns, in the same order,
a `DirectoryUser` or None for each. `USER_RESOLVER` names a factory, `package.module:factory`,
called once per app with the Flask app, returning the resolver. A resolver that cannot reach its
directory raises `DirectoryUnavailable`, which becomes a 503.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from flask import Flask
from sqlalchemy import ColumnElement, false, or_, select

from service.config import ConfigError
from service.db import db
from service.identifiers import IdentifierKind, UserIdentifier
from service.models import Role, StaffAssignment, User, lookup_key


@dataclass(frozen=True)
class DirectoryUser:
    """What the directory says of one user."""

    id: uuid.UUID
    email: str
    reference_id: str
    role: Role
    center_ids: frozenset[uuid.UUID]
    current_unit: int | None = None


class DirectoryUnavailable(RuntimeError):
    """The directory behind a resolver does not answer (a 503, not a 404)."""


@runtime_checkable
class UserResolver(Protocol):
    """Resolves identifiers to directory users, in one call per request."""

    def resolve(self, identifiers: Sequence[UserIdentifier]) -> list[DirectoryUser | None]:
        """Return, for each identifier in order, its user or None."""
        ...


class DatabaseUserResolver:
    """The default resolver: the service's own `users` and `staff_centers` tables."""

    def resolve(self, identifiers: Sequence[UserIdentifier]) -> list[DirectoryUser | None]:
        """Look every identifier up in one statement; each condition is an index lookup."""
        if not identifiers:
            return []
        condition = or_(*(_condition(identifier) for identifier in identifiers))
        statement = (
            select(User, StaffAssignment.center_id)
            .outerjoin(StaffAssignment, StaffAssignment.user_id == User.id)
            .where(condition)
        )
        users: dict[uuid.UUID, User] = {}
        centers: dict[uuid.UUID, set[uuid.UUID]] = {}
        for user, assigned_center in db.session.execute(statement):
            users[user.id] = user
            own = centers.setdefault(user.id, set())
            if user.center_id is not None:
                own.add(user.center_id)
            if assigned_center is not None:
                own.add(assigned_center)
        found = [
            DirectoryUser(
                id=user.id,
                email=user.email,
                reference_id=user.reference_id,
                role=user.role,
                center_ids=frozenset(centers[user.id]),
                current_unit=user.current_unit,
            )
            for user in users.values()
        ]
        return [_match(identifier, found) for identifier in identifiers]


def _condition(identifier: UserIdentifier) -> ColumnElement[bool]:
    if identifier.kind is IdentifierKind.ID:
        return User.id == identifier.user_id
    if identifier.kind is IdentifierKind.EMAIL:
        return User.email_key == lookup_key(identifier.value)
    if identifier.kind is IdentifierKind.REFERENCE:
        return User.reference_key == lookup_key(identifier.value)
    return false()


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


def load_resolver(app: Flask, spec: str) -> UserResolver:
    """Import `package.module:factory`, call it with the app, and check what it returns."""
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise ConfigError(f"USER_RESOLVER must be 'package.module:factory', got {spec!r}")
    try:
        factory: Callable[[Flask], object] = getattr(
            importlib.import_module(module_name), factory_name
        )
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"USER_RESOLVER {spec!r} cannot be loaded: {error}") from None
    resolver = factory(app)
    if not isinstance(resolver, UserResolver):
        raise ConfigError(f"USER_RESOLVER {spec!r} returned no object with a resolve() method")
    return resolver
