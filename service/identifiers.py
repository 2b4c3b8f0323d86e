"""The `{userIdentifier}` path segment: its spellings, parsed before any database work."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass

MAX_LENGTH = 254
REPLACEMENT_CHARACTER = "\ufffd"

_HEX = "[0-9A-Fa-f]"
_D = rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
# The four formats of .NET's Guid.Parse that the README names: D, N, B ({D}) and P ((D)).
GUID = re.compile(rf"{_D}|{_HEX}{{32}}|\{{{_D}\}}|\({_D}\)")


class IdentifierKind(enum.Enum):
    """What an identifier is matched against."""

    ID = "id"
    EMAIL = "email"
    REFERENCE = "ref"
    ME = "me"


@dataclass(frozen=True)
class UserIdentifier:
    """One parsed identifier: its kind and the value to look up."""

    kind: IdentifierKind
    value: str

    @property
    def user_id(self) -> uuid.UUID:
        """The GUID of an ID identifier."""
        return uuid.UUID(self.value)


class InvalidIdentifier(ValueError):
    """The identifier is malformed; the message says why, for a 400."""

    @property
    def errors(self) -> dict[str, list[str]]:
        """The message as the path parameter's error (as `InvalidQuery.errors` for arguments)."""
        return {"userIdentifier": [str(self)]}


ME = UserIdentifier(IdentifierKind.ME, "me")
_EXPLICIT = {
    "id:": IdentifierKind.ID,
    "email:": IdentifierKind.EMAIL,
    "ref:": IdentifierKind.REFERENCE,
}


def parse_identifier(raw: str) -> UserIdentifier:
    """Parse one spelling of a user (GUID, email, reference id, `me`, or explicit `kind:`)."""
    text = raw.strip()
    _check_shape(text)
    for prefix, kind in _EXPLICIT.items():
        if text.startswith(prefix):
            value = text[len(prefix) :].strip()
            _check_shape(value)
            if kind is IdentifierKind.ID:
                if not GUID.fullmatch(value):
                    raise InvalidIdentifier("an explicit 'id:' identifier must be a GUID")
                return UserIdentifier(kind, str(uuid.UUID(value.strip("{}()"))))
            return UserIdentifier(kind, value)
    if text == "me":
        return ME
    if GUID.fullmatch(text):
        return UserIdentifier(IdentifierKind.ID, str(uuid.UUID(text.strip("{}()"))))
    if is_email(text):
        return UserIdentifier(IdentifierKind.EMAIL, text)
    return UserIdentifier(IdentifierKind.REFERENCE, text)


def is_email(text: str) -> bool:
    """One `@` with text on both sides."""
    local, at, domain = text.partition("@")
    return bool(at) and bool(local) and bool(domain) and "@" not in domain


def _check_shape(text: str) -> None:
    if not text:
        raise InvalidIdentifier("the user identifier is empty")
    if len(text) > MAX_LENGTH:
        raise InvalidIdentifier(f"the user identifier is longer than {MAX_LENGTH} characters")
    if not text.isprintable():
        raise InvalidIdentifier("the user identifier contains control or unprintable characters")
    if REPLACEMENT_CHARACTER in text:
        # What werkzeug decodes invalid UTF-8 to: the identifier sent is lost, so it names nobody.
        raise InvalidIdentifier("the user identifier is not valid UTF-8")
