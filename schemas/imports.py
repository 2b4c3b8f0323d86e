"""The import document of `load-data` (docs/data.md): PascalCase keys, strictly typed.

Every schema rejects unknown keys. Loaded records use the database's column names, so the loader
writes them as they are.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from service.directory import Role
from service.identifiers import GUID, is_email
from service.models import INT32_MAX

MAX_TEXT = 254


class Text(fields.String):
    """1 to 254 printable characters, without white space at either end."""

    default_error_messages = {
        "length": f"Must be 1 to {MAX_TEXT} characters long.",
        "unprintable": "Must not contain control or unprintable characters.",
        "padded": "Must not start or end with white space.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if not 1 <= len(text) <= MAX_TEXT:
            raise self.make_error("length")
        if not text.isprintable():
            raise self.make_error("unprintable")
        if text != text.strip():
            # The path identifier is stripped, so a padded reference id could never be found.
            raise self.make_error("padded")
        return text


class Email(Text):
    """One `@` with text on both sides: the rule the path identifier uses to spot an email."""

    default_error_messages = {"email": "Not a valid email address."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_email(text):
            raise self.make_error("email")
        return text


class Guid(fields.Field[uuid.UUID]):
    """A GUID as .NET writes it (D, N, B or P form, any case), as the path identifier takes it."""

    default_error_messages = {"invalid": "Not a valid GUID."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> uuid.UUID:
        if not isinstance(value, str) or not GUID.fullmatch(value):
            raise self.make_error("invalid")
        return uuid.UUID(value.strip("{}()"))


class StrictBoolean(fields.Field[bool]):
    """JSON `true` or `false` only (not 1, "yes" or "true")."""

    default_error_messages = {"invalid": "Not a valid boolean (true or false)."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is not True and value is not False:
            raise self.make_error("invalid")
        return bool(value)


class DateTimeWithOffset(fields.AwareDateTime):
    """An ISO 8601 date-time with an offset (`Z` allowed), converted to UTC."""

    default_error_messages = {"invalid_awareness": "Needs an offset (for example +00:00 or Z)."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


class _Strict(Schema):
    """Rejects unknown keys (marshmallow's default), with messages that speak of JSON."""

    error_messages = {"unknown": "Unknown key.", "type": "Must be a JSON object."}


def _whole(minimum: int, **options: Any) -> fields.Integer:
    return fields.Integer(
        strict=True, validate=validate.Range(min=minimum, max=INT32_MAX), **options
    )


class CenterImportSchema(_Strict):
    """One center."""

    id = Guid(data_key="Id", required=True)
    reference_id = Text(data_key="ReferenceId", required=True)
    name = Text(data_key="Name", required=True)


class UserImportSchema(_Strict):
    """One user: a Student (CenterId, CurrentUnit) or a StaffMember (CenterIds)."""

    id = Guid(data_key="Id", required=True)
    reference_id = Text(data_key="ReferenceId", required=True)
    email = Email(data_key="Email", required=True)
    role = fields.String(
        data_key="Role", required=True, validate=validate.OneOf([r.value for r in Role])
    )
    center_id = Guid(data_key="CenterId", allow_none=True)
    current_unit = _whole(1, data_key="CurrentUnit", allow_none=True)
    center_ids = fields.List(Guid(), data_key="CenterIds", allow_none=True)

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _fits_role(self, data: dict[str, Any], original: Any, **_kwargs: Any) -> None:
        # null counts as absent: exporters that write every property send the other role's as null.
        given = {key for key, value in original.items() if value is not None}
        role, errors = data.get("role"), {}
        if role == Role.STUDENT:
            if "CenterId" not in given:
                errors["CenterId"] = ["A Student needs a CenterId."]
            if "CenterIds" in given:
                errors["CenterIds"] = ["A Student has one CenterId, not CenterIds."]
        if role == Role.STAFF_MEMBER:
            if "CenterIds" not in given:
                errors["CenterIds"] = ["A StaffMember needs CenterIds (a list, may be empty)."]
            for name in ("CenterId", "CurrentUnit"):
                if name in given:
                    errors[name] = [f"A StaffMember has CenterIds, not {name}."]
        centers = data.get("center_ids") or []
        if len(set(centers)) != len(centers):
            errors["CenterIds"] = ["Names the same center twice."]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _typed(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data["role"] = Role(data["role"])
        return data


class EncounterImportSchema(_Strict):
    """One encounter; times carry an offset and are kept in UTC."""

    id = Guid(data_key="Id", required=True)
    center_id = Guid(data_key="CenterId", required=True)
    unit_number = _whole(1, data_key="UnitNumber", required=True)
    starts_at = DateTimeWithOffset(data_key="DateTime", required=True)
    ends_at = DateTimeWithOffset(data_key="EndDate", required=True)
    is_online = StrictBoolean(data_key="IsOnline", required=True)
    capacity = _whole(0, data_key="Capacity", required=True)
    cancelled = StrictBoolean(data_key="Cancelled", load_default=False)

    @validates_schema
    def _ends_after_start(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("Must be after DateTime.", field_name="EndDate")


class BookingImportSchema(_Strict):
    """One booking of an encounter by a user."""

    encounter_id = Guid(data_key="EncounterId", required=True)
    user_id = Guid(data_key="UserId", required=True)
    cancelled = StrictBoolean(data_key="Cancelled", load_default=False)


class ImportDocumentSchema(_Strict):
    """The whole document: four optional lists."""

    centers = fields.List(fields.Nested(CenterImportSchema), load_default=list)
    users = fields.List(fields.Nested(UserImportSchema), load_default=list)
    encounters = fields.List(fields.Nested(EncounterImportSchema), load_default=list)
    bookings = fields.List(fields.Nested(BookingImportSchema), load_default=list)
