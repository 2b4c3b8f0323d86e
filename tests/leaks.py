"""What must never appear in a log line or an error body: emails, tokens, keys and secrets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from tests.dataset import USERS
from tests.tokens import SECRET

# Every JWT starts with the base64url of '{"': a token, or a large piece of one, is caught by shape.
JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]{16,}")
PEM_MARKER = "-----BEGIN"
DATASET_EMAILS = tuple(user.email for user in USERS.values())


def leaks_in(text: str, extra: Iterable[str] = ()) -> list[str]:
    """The secrets found in `text`: dataset emails, JWT-shaped strings, PEM keys, the secret."""
    lowered = text.lower()
    found = [
        email
        for email in DATASET_EMAILS
        for spelling in (email.lower(), email.lower().replace("@", "%40"))
        if spelling in lowered
    ]
    found += JWT_SHAPED.findall(text)
    found += [marker for marker in (PEM_MARKER, SECRET) if marker in text]
    # Long hand-made tokens need not look like a JWT; their tails are looked for verbatim.
    found += [value[:24] + "..." for value in extra if value and value[-32:] in text]
    return found


def log_text(records: Iterable[logging.LogRecord]) -> str:
    """Everything a log handler could print of these records: message, arguments, extras."""
    return "\n".join(
        f"{record.getMessage()} {record.exc_text or ''} {record.__dict__!r}" for record in records
    )
