"""The answers the known dataset must give, worked out from its tables without the service's code.

Used by the property tests and the soak script to tell a right answer from a wrong one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from service.directory import Role
from tests.dataset import BOOKINGS, CENTERS, ENCOUNTERS, USERS, dataset_id


def visible(caller: str, target: str) -> bool:
    """Who may call it (README): oneself, or a staff member sharing a center with the target."""
    staff = USERS[caller].role is Role.STAFF_MEMBER
    shared = USERS[caller].center_names & USERS[target].center_names
    return caller == target or (staff and bool(shared))


def expected_encounters(
    target: str,
    starts: datetime,
    ends: datetime,
    unit: int | None = None,
    online: bool | None = None,
) -> list[dict[str, object]]:
    """The JSON the service must answer for `target` (a USERS name) and these arguments."""
    user = USERS[target]
    student = user.role is Role.STUDENT
    wanted_unit = unit if unit is not None or not student else user.unit
    if student and wanted_unit is None:
        return []
    rows = []
    for name, encounter in ENCOUNTERS.items():
        begins = encounter.starts
        in_scope = encounter.center in user.center_names or (student and encounter.online)
        if (
            not in_scope
            or encounter.cancelled
            or not starts <= begins < ends
            or (wanted_unit is not None and encounter.unit != wanted_unit)
            or (online is not None and encounter.online != online)
        ):
            continue
        active = [b.user for b in BOOKINGS if b.encounter == name and not b.cancelled]
        full = len(active) >= encounter.capacity
        status = "Booked" if target in active else "Full" if full else "Available"
        center = CENTERS[encounter.center]
        rows.append(
            {
                "UnitNumber": encounter.unit,
                "Id": str(dataset_id(name)),
                "DateTime": begins.isoformat(),
                "EndDate": (begins + timedelta(minutes=encounter.minutes)).isoformat(),
                "Duration": encounter.minutes,
                "Status": status,
                "IsOnline": encounter.online,
                "CenterId": str(dataset_id(encounter.center)),
                "CenterName": center.name,
                "CenterReferenceId": center.reference_id,
            }
        )
    return sorted(rows, key=lambda row: (row["DateTime"], uuid.UUID(str(row["Id"]))))
