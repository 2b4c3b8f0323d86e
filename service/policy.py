"""Who may see whose encounters (README: "Who may call it"): one pure function over plain values."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from service.directory import DirectoryUser, Role


class Decision(enum.Enum):
    """What the endpoint answers: the list, a 403, or the 404 that reveals nothing."""

    ALLOW = "allow"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Caller:
    """The caller: the directory's record of the token's subject (or None), and its role names."""

    user: DirectoryUser | None
    role_names: frozenset[str]


def role_named(name: str) -> Role | None:
    """The role a token's role name means: case-insensitive, otherwise exact (ASCII only)."""
    return _ROLES.get(name.lower()) if name.isascii() else None


# One lookup a name: iterating an enum's members is the slowest part of a request's policy.
_ROLES = {role.value.lower(): role for role in Role}


def roles_named(names: Iterable[str]) -> frozenset[Role]:
    """The known roles among a token's role names."""
    return frozenset(role for role in map(role_named, names) if role is not None)


def may_view(caller: Caller, target: DirectoryUser | None) -> Decision:
    """Decide whether `caller` may list the encounters of `target`."""
    user = caller.user
    if user is None or user.role not in roles_named(caller.role_names):
        return Decision.FORBIDDEN
    if target is None:
        return Decision.NOT_FOUND
    if user.id == target.id:
        return Decision.ALLOW
    if user.role is Role.STAFF_MEMBER and user.center_ids & target.center_ids:
        return Decision.ALLOW
    return Decision.NOT_FOUND
