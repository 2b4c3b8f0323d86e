"""The test deployment's tokens: `service.tokens.mint_token` with the tests' HMAC secret.

Every token names the tests' identity provider (`iss`) and this service (`aud`), which a
public-key deployment must check (PROVIDER); an HMAC deployment checks them only when set.
"""

from __future__ import annotations

from typing import Any

from service.config import Settings
from service.tokens import mint_token

SECRET = "test-secret-that-is-long-enough-0123456789"
TTL_SECONDS = 600
PROVIDER = {"JWT_ISSUER": "https://idp.test", "JWT_AUDIENCE": "encounters-api"}


class Tokens:
    """Real tokens for a deployment with `secret`; any claim, key or header can be overridden."""

    def __init__(self, secret: str = SECRET, ttl: int = TTL_SECONDS) -> None:
        self.settings = Settings.from_mapping(
            {"JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256", **PROVIDER}
        )
        self.ttl = ttl

    def mint(self, subject: Any = "ST-000123", role: Any = "Student", **options: Any) -> str:
        """A token for `subject` with `role`; `options` as `mint_token` takes them."""
        return mint_token(self.settings, subject, role, self.ttl, **options)

    def header(
        self, subject: Any = "ST-000123", role: Any = "Student", **claims: Any
    ) -> dict[str, str]:
        """An Authorization header carrying a fresh token."""
        return {"Authorization": f"Bearer {self.mint(subject, role, **claims)}"}
