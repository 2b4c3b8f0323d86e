"""The rows load-data stages for one checked record of the import document."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from marshmallow import Schema

from schemas.imports import (
    BookingImportSchema,
    CenterImportSchema,
    EncounterImportSchema,
    UserImportSchema,
)
from service.admin.import_checks import record_label
from service.models import lookup_key

SCHEMAS: dict[str, Schema] = {
    "centers": CenterImportSchema(),
    "users": UserImportSchema(),
    "encounters": EncounterImportSchema(),
    "bookings": BookingImportSchema(),
}


def staged_rows(
    kind: str, index: int, raw: dict[str, Any], record: dict[str, Any]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(staging table, row) pairs for `record`, checked from `raw`, the index-th of `kind`."""
    ids: tuple[tuple[str, str], ...] = (
        (("EncounterId", "encounter_id"), ("UserId", "user_id"))
        if kind == "bookings"
        else (("Id", "id"),)
    )
    # Errors name a record as the document spelt it; kept only when that is not canonical.
    canonical = all(_canonical(raw[key], record[name]) for key, name in ids)
    label = None if canonical else record_label(kind, index, raw)
    get = record.get
    if kind == "bookings":
        yield kind, (index, label, record["encounter_id"], record["user_id"], record["cancelled"])
    elif kind == "encounters":
        yield kind, (index, label, record["id"], record["center_id"], record["unit_number"],
                     record["starts_at"], record["ends_at"], record["is_online"],
                     record["capacity"], record["cancelled"])  # fmt: skip
    elif kind == "centers":
        yield kind, (index, label, record["id"], record["reference_id"], record["name"])
    else:
        email, reference = record["email"], record["reference_id"]
        yield kind, (index, label, record["id"], email, lookup_key(email), reference,
                     lookup_key(reference), record["role"].value, get("center_id"),
                     get("current_unit"))  # fmt: skip
        for position, center_id in enumerate(get("center_ids") or ()):
            yield "staff", (index, position, record["id"], center_id)


def _canonical(spelt: Any, value: uuid.UUID | str) -> bool:
    """Whether a GUID was spelt as errors show it: lowercase D form."""
    return spelt == value.lower() if isinstance(value, str) else spelt == str(value)
