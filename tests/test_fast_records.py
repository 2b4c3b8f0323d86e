"""The schema stage's fast path accepts only what the import schemas accept, and loads it the same."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from marshmallow import ValidationError

from service.admin.fast_records import fast_record
from service.admin.records import SCHEMAS
from tests.test_load_data import MALFORMED, gid, valid_document

ODD = [
    ("users", {"Id": gid("x").upper(), "ReferenceId": "R", "Email": "a@b", "Role": "Student",
               "CenterId": gid("c"), "CurrentUnit": None}),
    ("users", {"Id": gid("x"), "ReferenceId": "R", "Email": "a@b", "Role": "Student",
               "CenterId": gid("c"), "CenterIds": None}),
    ("users", {"Id": gid("x"), "ReferenceId": "R", "Email": "a@b", "Role": "StaffMember",
               "CenterIds": [gid("c"), gid("c").upper()]}),
    ("users", {"Id": gid("x"), "ReferenceId": "R", "Email": "a@b", "Role": "StaffMember",
               "CenterIds": []}),
    ("users", {"Id": gid("x"), "ReferenceId": "R", "Email": "a@b", "Role": "Student",
               "CenterId": gid("c"), "CurrentUnit": True}),
    ("encounters", {"Id": gid("e"), "CenterId": gid("c"), "UnitNumber": 1, "IsOnline": False,
                    "DateTime": "2030-01-01T10:00:00Z", "EndDate": "2030-01-01T09:30:00-01:00",
                    "Capacity": 0}),
    ("encounters", {"Id": gid("e"), "CenterId": gid("c"), "UnitNumber": 1, "IsOnline": False,
                    "DateTime": "2030-02-30T10:00:00Z", "EndDate": "2030-03-01T10:00:00Z",
                    "Capacity": 1}),
    ("encounters", {"Id": gid("e"), "CenterId": gid("c"), "UnitNumber": 1, "IsOnline": False,
                    "DateTime": "2030-01-01T10:00:00.1234567+00:00",
                    "EndDate": "2030-01-01T11:00:00+00:00", "Capacity": 1}),
    ("bookings", {"EncounterId": "{" + gid("e") + "}", "UserId": gid("u").replace("-", "")}),
    ("bookings", {"EncounterId": gid("e"), "UserId": gid("u"), "Cancelled": None}),
    ("centers", {"Id": gid("c"), "ReferenceId": "C", "Name": "Tab\there"}),
    ("centers", {"Id": gid("c"), "ReferenceId": "C", "Name": "\u00a0Padded"}),
]  # fmt: skip


def records() -> list[tuple[str, Any]]:
    """Every record of the valid document, of each malformed variant, and the odd ones."""
    documents = [valid_document()]
    for change, _message in MALFORMED.values():
        document = valid_document()
        change(document)
        documents.append(document)
    found = [
        (kind, record)
        for document in documents
        for kind in SCHEMAS
        if isinstance(document.get(kind), list)
        for record in document[kind]
    ]
    return found + ODD


def _typed(value: Any) -> Any:
    """GUIDs the fast path keeps as text, as the schema's uuid.UUID."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return value
    return value


@pytest.mark.parametrize(("kind", "raw"), records())
def test_the_fast_path_agrees_with_the_schema(kind: str, raw: Any) -> None:
    fast = fast_record(kind, copy.deepcopy(raw))
    try:
        expected = SCHEMAS[kind].load(copy.deepcopy(raw))
    except ValidationError:
        assert fast is None
        return
    if fast is not None:
        assert _typed(fast) == expected


def test_the_fast_path_takes_the_common_records() -> None:
    document = valid_document()
    assert all(fast_record(kind, record) for kind in SCHEMAS for record in document[kind])
