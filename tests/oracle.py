"""The answers the known dataset must give, worked out from its tables without the service's code.

Used by the property tests and the soak script to tell a right answer from a wrong one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from service.directory import Role
from tests.conftest import BASE, BOOKINGS, CENTERS, ENCOUNTERS, USERS, _id


def user_centers(name: str) -> set[str]:
    """The centers a user belongs to: a student's own, or a staff member's assignments."""
    user = USERS[name]
    return set(user["centers"]) if "centers" in user else {user["center"]}


def visible(caller: str, target: str) -> bool:
    """SPEC 4.2: oneself, or a staff member sharing a center with the target."""
    staff = USERS[caller]["role"] is Role.STAFF_MEMBER
    return caller == target or (staff and bool(user_centers(caller) & user_centers(target)))


def expected_encounters(
    target: str,
    starts: datetime,
    ends: datetime,
    unit: int | None = None,
    online: bool | None = None,
) -> list[dict[str, object]]:
    """The JSON the service must answer for `target` (a USERS name) and these arguments."""
    user = USERS[target]
    student = user["role"] is Role.STUDENT
    wanted_unit = unit if unit is not None or not student else user["unit"]
    if student and wanted_unit is None:
        return []
    rows = []
    for name, (
        center,
        unit_number,
        days,
        minutes,
        is_online,
        capacity,
        cancelled,
    ) in ENCOUNTERS.items():
        begins = BASE + timedelta(days=days)
        in_scope = (center == user["center"] or is_online) if student else center in user["centers"]
        if (
            not in_scope
            or cancelled
            or not starts <= begins < ends
            or (wanted_unit is not None and unit_number != wanted_unit)
            or (online is not None and is_online != online)
        ):
            continue
        active = [u for e, u, gone in BOOKINGS if e == name and not gone]
        status = (
            "Booked" if target in active else "Full" if len(active) >= capacity else "Available"
        )
        reference, center_name = CENTERS[center]
        rows.append(
            {
                "UnitNumber": unit_number,
                "Id": str(_id(name)),
                "DateTime": begins.isoformat(),
                "EndDate": (begins + timedelta(minutes=minutes)).isoformat(),
                "Duration": minutes,
                "Status": status,
                "IsOnline": is_online,
                "CenterId": str(_id(center)),
                "CenterName": center_name,
                "CenterReferenceId": reference,
            }
        )
    return sorted(rows, key=lambda row: (row["DateTime"], uuid.UUID(str(row["Id"]))))
