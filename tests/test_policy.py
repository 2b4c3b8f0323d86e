"""Who may call it (README) as a table: the pure policy, with no app, database or token."""

from __future__ import annotations

import uuid

import pytest

from service.directory import DirectoryUser, Role
from service.policy import Caller, Decision, may_view, role_named

LISBON, PORTO, MADRID = (uuid.uuid4() for _ in range(3))


def user(role: Role, *centers: uuid.UUID) -> DirectoryUser:
    return DirectoryUser(uuid.uuid4(), "x@example.com", "X", role, frozenset(centers), None)


ANA = user(Role.STUDENT, LISBON)
BRUNO = user(Role.STUDENT, PORTO)
RUI = user(Role.STAFF_MEMBER, LISBON, MADRID)
SARA = user(Role.STAFF_MEMBER, PORTO)
NOBODY_STAFF = user(Role.STAFF_MEMBER)
S, M = "Student", "StaffMember"

TABLE = [
    # caller, token roles, target, decision
    (ANA, {S}, ANA, Decision.ALLOW),  # oneself
    (ANA, {S}, BRUNO, Decision.NOT_FOUND),  # another student
    (ANA, {S}, RUI, Decision.NOT_FOUND),  # a student never sees staff, even of their center
    (ANA, {S}, None, Decision.NOT_FOUND),  # nobody
    (RUI, {M}, ANA, Decision.ALLOW),  # staff sharing a center with the student
    (RUI, {M}, BRUNO, Decision.NOT_FOUND),  # staff of other centers
    (RUI, {M}, RUI, Decision.ALLOW),
    (RUI, {M}, SARA, Decision.NOT_FOUND),  # staff with no common center
    (RUI, {M}, user(Role.STAFF_MEMBER, MADRID), Decision.ALLOW),  # staff sharing a center
    (SARA, {M}, BRUNO, Decision.ALLOW),
    (NOBODY_STAFF, {M}, ANA, Decision.NOT_FOUND),  # staff with no center sees no one else
    (NOBODY_STAFF, {M}, NOBODY_STAFF, Decision.ALLOW),
    (RUI, {M}, None, Decision.NOT_FOUND),
    # Rule 1: the token must carry the role the directory gives.
    (ANA, {M}, ANA, Decision.FORBIDDEN),  # token says staff, directory says student
    (RUI, {S}, ANA, Decision.FORBIDDEN),  # token says student, directory says staff
    (ANA, set(), ANA, Decision.FORBIDDEN),  # no role
    (ANA, {"Admin"}, ANA, Decision.FORBIDDEN),
    (ANA, {"student"}, ANA, Decision.ALLOW),  # case-insensitive
    (RUI, {"STAFFMEMBER"}, ANA, Decision.ALLOW),
    (RUI, {S, M}, ANA, Decision.ALLOW),  # several roles: the directory's is among them
    (ANA, {S, M}, BRUNO, Decision.NOT_FOUND),  # ...and the directory's role is what counts
    (RUI, {" StaffMember"}, ANA, Decision.FORBIDDEN),  # no trimming
    (RUI, {"StaffMemb\u0435r"}, ANA, Decision.FORBIDDEN),  # Cyrillic ie
    (RUI, {"Staff Member"}, ANA, Decision.FORBIDDEN),
    (ANA, {"\u017ftudent"}, ANA, Decision.FORBIDDEN),  # long s folds to "s" under casefold()
    (None, {S}, ANA, Decision.FORBIDDEN),  # subject is no known user
    (None, {M}, None, Decision.FORBIDDEN),  # 403 wins over 404
]


@pytest.mark.parametrize(("caller", "roles", "target", "decision"), TABLE)
def test_policy(
    caller: DirectoryUser | None, roles: set[str], target: DirectoryUser | None, decision: Decision
) -> None:
    assert may_view(Caller(caller, frozenset(roles)), target) is decision


def test_role_names() -> None:
    assert role_named("studENT") is Role.STUDENT
    assert role_named("staffmember") is Role.STAFF_MEMBER
    assert role_named("Teacher") is None
    assert role_named("StaffMember\u200b") is None
