"""A third-party resolver, as a deployment whose users live elsewhere would write one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from flask import Flask

from service.directory import DirectoryUnavailable, DirectoryUser, Role
from service.identifiers import IdentifierKind, UserIdentifier

LISBON = uuid.uuid5(uuid.NAMESPACE_URL, "encounters-test/lisbon")
PEOPLE = [
    DirectoryUser(
        uuid.UUID(int=1), "zoe@elsewhere.example", "EXT-1", Role.STUDENT, frozenset({LISBON}), 3
    ),
    DirectoryUser(
        uuid.UUID(int=2), "yan@elsewhere.example", "EXT-2", Role.STAFF_MEMBER, frozenset({LISBON})
    ),
]


class MemoryDirectory:
    """Resolves against a fixed list, and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[list[UserIdentifier]] = []
        self.down = False

    def resolve(self, identifiers: Sequence[UserIdentifier]) -> list[DirectoryUser | None]:
        """Each identifier's person, or None."""
        self.calls.append(list(identifiers))
        if self.down:
            raise DirectoryUnavailable("the directory is down")
        return [self._find(identifier) for identifier in identifiers]

    @staticmethod
    def _find(identifier: UserIdentifier) -> DirectoryUser | None:
        for person in PEOPLE:
            if identifier.kind is IdentifierKind.ID and str(person.id) == identifier.value:
                return person
            if identifier.kind is IdentifierKind.EMAIL and person.email == identifier.value.lower():
                return person
            if (
                identifier.kind is IdentifierKind.REFERENCE
                and person.reference_id == identifier.value.upper()
            ):
                return person
        return None


def make_directory(app: Flask) -> MemoryDirectory:
    """The factory named by USER_RESOLVER=tests.plugins.memory_directory:make_directory."""
    return MemoryDirectory()


def not_a_resolver(app: Flask) -> object:
    """A factory that returns something without resolve()."""
    return object()
