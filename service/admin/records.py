"""The rows load-data stages for one checked record of the import document."""

from __future__ import annotations

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
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(staging table, row) pairs for `record`, checked from `raw`, the index-th of `kind`."""
    if kind == "bookings":
        canonical = raw["EncounterId"] == str(record["encounter_id"]) and raw["UserId"] == str(
            record["user_id"]
        )
    else:
        canonical = raw["Id"] == str(record["id"])
    # Errors name a record as the document spelt it; kept only when that is not canonical.
    row = {"pos": index, "label": None if canonical else record_label(kind, index, raw), **record}
    if kind != "users":
        yield kind, row
        return
    row["email_key"] = lookup_key(record["email"])
    row["reference_key"] = lookup_key(record["reference_id"])
    row["role"] = record["role"].value
    center_ids = row.pop("center_ids", None) or ()
    row.setdefault("center_id", None)
    row.setdefault("current_unit", None)
    yield kind, row
    for position, center_id in enumerate(center_ids):
        yield "staff", {"pos": index, "position": position, "user_id": record["id"],
                        "center_id": center_id}  # fmt: skip
