"""The default user resolver: the service's own `users` and `staff_centers` tables.

The interface it implements, and that a third-party resolver implements instead, is in
`service.directory`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Flask
from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)

from service.db import db
from service.directory import DirectoryUser, Listed, Role, UserResolver
from service.encounters import ListQuery, Target, student_list_json
from service.identifiers import IdentifierKind, UserIdentifier
from service.models import Encounter, StaffAssignment, User, lookup_key


class DatabaseUserResolver:
    """The default resolver: the service's own `users` and `staff_centers` tables."""

    def resolve(self, identifiers: Sequence[UserIdentifier]) -> list[DirectoryUser | None]:
        """Look every identifier up in one statement; each condition is an index lookup."""
        if not identifiers:
            return []
        kinds = tuple(identifier.kind for identifier in identifiers)
        return _found(identifiers, db.read(_statement(kinds), _parameters(identifiers)))

    def resolve_listing(self, identifiers: Sequence[UserIdentifier], listing: ListQuery) -> Listed:
        """`resolve`, and in the same statement the last identifier's list if it is a student's.

        One round trip instead of two (`service.directory.resolve_listing`). The list is read
        before the policy decides: an answer it refuses never leaves the process, and a staff
        member's list (no `student` row: an empty body, no row read) takes a statement of its
        own after. On PostgreSQL only, where the database writes the list's JSON.
        """
        if not identifiers or db.connection.dialect.name != "postgresql":
            return self.resolve(identifiers), None
        kinds = tuple(identifier.kind for identifier in identifiers)
        parameters = _listing_parameters(identifiers, listing)
        rows = db.read(_listing_statement(kinds, listing.online), parameters)
        # The directory's rows have a user id; the list's one row has none.
        users = _found(identifiers, (row for row in rows if row[0] is not None))
        body: str = next(row[-1] for row in rows if row[0] is None)
        target = users[-1]
        return users, body.encode() if target and target.role is Role.STUDENT else None


def _parameters(identifiers: Sequence[UserIdentifier]) -> dict[str, object]:
    return {
        f"key_{position}": _lookup_value(identifier)
        for position, identifier in enumerate(identifiers)
    }


def _listing_parameters(
    identifiers: Sequence[UserIdentifier], listing: ListQuery
) -> dict[str, object]:
    """`_listing_statement`'s parameters: the lookup's keys and the list's own."""
    return {
        **_parameters(identifiers),
        "unit": listing.unit,
        "starts": listing.window.starts,
        "ends": listing.window.ends,
    }


def _found(
    identifiers: Sequence[UserIdentifier], rows: Iterable[Sequence[Any]]
) -> list[DirectoryUser | None]:
    """Each identifier's user among the lookup's rows (a user's row per assigned center)."""
    users: dict[uuid.UUID, tuple[str, str, Role, int | None]] = {}
    centers: dict[uuid.UUID, set[uuid.UUID]] = {}
    for row in rows:
        user_id, email, reference_id, role, own_center, current_unit, assigned_center = row[:7]
        # Role(): PostgreSQL's driver gives the enum's text (service.driver_sql: `run`).
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
            StaffAssignment.center_id.label("assigned_center_id"),
        )
        .outerjoin(StaffAssignment, StaffAssignment.user_id == User.id)
        .where(condition)
    )


@functools.cache
def _listing_statement(kinds: tuple[IdentifierKind, ...], online: bool | None) -> CompoundSelect:
    """The lookup's rows, then one row of the last identifier's list (its `body`) if a student.

    The lookup is a CTE; the list takes the target's values from it as uncorrelated subqueries
    (each computed once, the bookings' subplan still hashed), its centers as an array for the
    index's `= ANY`, and meets `student` once per branch before it reads a row.
    """
    last: BindParameter[Any] = bindparam(f"key_{len(kinds) - 1}")
    lookup = _statement(kinds).add_columns(_condition(kinds[-1], last).label("is_target"))
    directory = lookup.cte("directory")
    users = [column for column in directory.c if column.key != "is_target"]

    def of_target(column: Any) -> Any:
        # LIMIT 1 in the SQL's text, not a parameter: nothing for the driver to send.
        one = literal_column("1", Integer)
        return select(column).where(directory.c.is_target).limit(one).scalar_subquery()

    centers = func.array_agg(directory.c.center_id).op("||")(
        func.array_agg(directory.c.assigned_center_id)
    )
    target = Target(
        user_id=of_target(directory.c.id),
        unit=func.coalesce(bindparam("unit", type_=Integer), of_target(directory.c.current_unit)),
        # The cast makes the subquery one array value (`= ANY (SELECT ...)` compares each row).
        in_centers=Encounter.center_id == any_(cast(of_target(centers), ARRAY(Uuid))),
        student=of_target(directory.c.role) == literal_column(f"'{Role.STUDENT.value}'"),
    )
    listed = student_list_json(online, target).subquery("listed")
    return union_all(
        select(*users, null().label("body")),
        select(*(null() for _ in users), listed.c.body),
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
