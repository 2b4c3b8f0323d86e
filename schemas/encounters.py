"""The encounter list's wire format and its optional query arguments."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from service.models import INT32_MAX

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"[0-9]+")


class EncounterSchema(Schema):
    """One available encounter, with the original API's ten keys in its order."""

    UnitNumber = fields.Integer(attribute="unit_number", required=True)
    Id = fields.UUID(attribute="id", required=True)
    DateTime = fields.DateTime(format="iso", attribute="starts_at", required=True)
    EndDate = fields.DateTime(format="iso", attribute="ends_at", required=True)
    Duration = fields.Integer(
        attribute="duration",
        required=True,
        metadata={"description": "Length in whole minutes (EndDate - DateTime)"},
    )
    Status = fields.String(
        attribute="status", required=True, validate=validate.OneOf(["Available", "Booked", "Full"])
    )
    IsOnline = fields.Boolean(attribute="is_online", required=True)
    CenterId = fields.UUID(attribute="center_id", required=True)
    CenterName = fields.String(attribute="center_name", required=True)
    CenterReferenceId = fields.String(attribute="center_reference_id", required=True)


class Instant(fields.Field[datetime]):
    """An ISO 8601 date-time with an offset (`Z` allowed), or a date meaning 00:00 UTC."""

    default_error_messages = {
        "invalid": "Not an ISO 8601 date-time with offset, or a date (YYYY-MM-DD).",
        "naive": "A date-time needs an offset (for example +00:00 or Z).",
        "range": "Outside the years 0001 to 9999 once converted to UTC.",
        "plus": "A '+' in a query string arrives as a space: send the offset's '+' as %2B "
        "(for example 2026-12-03T00:00:00%2B01:00).",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = value.strip()
        try:
            if _DATE.fullmatch(text):
                return datetime.fromisoformat(text).replace(tzinfo=UTC)
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.make_error(_unencoded_plus(text) or "invalid") from None
        if moment.tzinfo is None:
            raise self.make_error("naive")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:00+01:00 is still year 0 in UTC, and 9999-12-31T23:00-02:00 year 10000.
            raise self.make_error("range") from None


def _unencoded_plus(text: str) -> str | None:
    """ "plus" when the text is a date-time whose offset's '+' was sent unencoded (so a space)."""
    head, space, offset = text.rpartition(" ")
    if not space:
        return None
    try:
        datetime.fromisoformat(f"{head}+{offset}")
    except ValueError:
        return None
    return "plus"


class WholeNumber(fields.Integer):
    """An integer in ASCII digits only (int() alone also takes '3_0' and full-width digits)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and not _DIGITS.fullmatch(value.strip()):
            raise self.make_error("invalid")
        number: int = super()._deserialize(value, attr, data, **kwargs)
        return number


class EncounterQuerySchema(Schema):
    """Optional filters of the encounter list; unknown parameters are ignored."""

    starts = Instant(
        data_key="from",
        metadata={
            "description": "Encounters that start at or after this (default: now).",
            "type": "string",
            "example": "2026-12-01T00:00:00+00:00",
        },
    )
    ends = Instant(
        data_key="to",
        metadata={
            "description": "Encounters that start before this (default: from + "
            "ENCOUNTER_WINDOW_DAYS; at most ENCOUNTER_MAX_WINDOW_DAYS after from).",
            "type": "string",
            "example": "2026-12-15",
        },
    )
    unit = WholeNumber(
        strict=False,
        validate=validate.Range(min=1, max=INT32_MAX),
        metadata={"description": "Only encounters of this unit."},
    )
    online = fields.Boolean(
        truthy={"true", "True", "TRUE"},
        falsy={"false", "False", "FALSE"},
        metadata={"description": "Only online (true) or only in-center (false) encounters."},
    )
