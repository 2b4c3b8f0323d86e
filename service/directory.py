"""The user directory as the service sees it: the resolver interface and its value types.

A resolver is any object with one method, `resolve(identifiers)`, that takes a sequence of
`UserIdentifier` (never of kind ME: the view substitutes the caller) and returns, in the same order,
a `DirectoryUser` or None for each. `USER_RESOLVER` names a factory, `package.module:factory`,
called once per app with the Flask app, returning the resolver. A resolver that cannot reach its
directory raises `DirectoryUnavailable`, which becomes a 503.

Nothing here needs a database: the policy and third-party resolvers import this module alone.
"""

from __future__ import annotations

import enum
import importlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from flask import Flask

from service.config import ConfigError
from service.identifiers import UserIdentifier


class Role(enum.StrEnum):
    """The two kinds of user the directory knows."""

    STUDENT = "Student"
    STAFF_MEMBER = "StaffMember"


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


# The users, and the body of the last one's list when the resolver read it along (else None).
Listed = tuple[list[DirectoryUser | None], bytes | None]


def resolve_listing(
    resolver: UserResolver, identifiers: Sequence[UserIdentifier], listing: Any
) -> Listed:
    """`resolver`'s users, and the last one's list when the resolver can read it in the same call.

    A resolver may offer `resolve_listing(identifiers, listing)` besides `resolve`: the default
    one does on PostgreSQL, where the lookup and a student's list are one statement (one round
    trip instead of two; `listing` is a `service.encounters.ListQuery`). It answers the body
    `encounters_json` would write for the last identifier's user, or None (not a student, not
    found), and nothing else may differ from `resolve`. Any other resolver, or `listing=None`
    (no list wanted), is asked `resolve`.
    """
    along: Callable[[Sequence[UserIdentifier], Any], Listed] | None = getattr(
        resolver, "resolve_listing", None
    )
    if along is None or listing is None:
        return resolver.resolve(identifiers), None
    return along(identifiers, listing)


class TimedResolver:
    """A resolver that reports how long each call of the wrapped one took."""

    def __init__(self, resolver: UserResolver, observe: Callable[[float], None]) -> None:
        self.resolver = resolver
        self.observe = observe

    def resolve(self, identifiers: Sequence[UserIdentifier]) -> list[DirectoryUser | None]:
        """The wrapped resolver's answer, timed."""
        return self.resolve_listing(identifiers, None)[0]

    def resolve_listing(self, identifiers: Sequence[UserIdentifier], listing: Any) -> Listed:
        """The wrapped resolver's answer (`resolve_listing` above), timed; `listing=None`: none."""
        started = time.perf_counter()
        try:
            return resolve_listing(self.resolver, identifiers, listing)
        finally:
            self.observe(time.perf_counter() - started)


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
