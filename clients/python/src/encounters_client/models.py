"""What the service answers: `Encounter`, one element of the list, in snake_case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

Status = Literal["Available", "Booked", "Full"]


@dataclass(frozen=True)
class Encounter:
    """An encounter the user can book (a student) or see (a staff member)."""

    unit_number: int
    id: UUID
    date_time: datetime
    """The start, aware (UTC)."""
    end_date: datetime
    """The end, aware (UTC)."""
    duration: int
    """Length in whole minutes (`end_date - date_time`)."""
    status: Status
    is_online: bool
    center_id: UUID
    center_name: str
    center_reference_id: str

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> Encounter:
        """An element of the service's JSON array (PascalCase keys)."""
        return cls(
            unit_number=item["UnitNumber"],
            id=UUID(item["Id"]),
            date_time=datetime.fromisoformat(item["DateTime"]),
            end_date=datetime.fromisoformat(item["EndDate"]),
            duration=item["Duration"],
            status=item["Status"],
            is_online=item["IsOnline"],
            center_id=UUID(item["CenterId"]),
            center_name=item["CenterName"],
            center_reference_id=item["CenterReferenceId"],
        )


def wire_name(field: str) -> str:
    """The service's key of a field: `center_reference_id` is `CenterReferenceId`."""
    return "".join(part.capitalize() for part in field.split("_"))
