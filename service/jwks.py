"""Signing keys from a JWKS endpoint: cached by `kid`, refetched at most once a minute.

PyJWKClient fetches and parses the set; the cache is ours, because its own one forgets every key
when a refresh fails, and an outage of the identity provider must not log everybody out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import jwt

REFETCH_INTERVAL_SECONDS = 60.0
MAX_AGE_SECONDS = 600.0
FETCH_TIMEOUT_SECONDS = 3.0


class UnknownSigningKey(Exception):
    """The token's `kid` is in no key set the endpoint served (a 401)."""


class KeySetUnavailable(Exception):
    """The `kid` is not cached and the endpoint did not answer (a 503: try again)."""


class JwksKeys:
    """The signing keys of one JWKS URL, by `kid`."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.clock = clock
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=FETCH_TIMEOUT_SECONDS)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_attempt_failed = False
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK:
        """The key named `kid`, fetching the set when it is unknown or old (rate-limited)."""
        with self._lock:
            key = self._keys.get(kid)
            if (key is None or self._is_old()) and self._may_fetch():
                self._refresh()
                key = self._keys.get(kid)
            if key is not None:
                return key
            if self._last_attempt_failed:
                raise KeySetUnavailable(self.url)
            raise UnknownSigningKey(kid)

    def _is_old(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at >= MAX_AGE_SECONDS

    def _may_fetch(self) -> bool:
        # Unknown kids are free for anyone to send: they must not turn into a flood of fetches.
        return (
            self._attempted_at is None
            or self.clock() - self._attempted_at >= REFETCH_INTERVAL_SECONDS
        )

    def _refresh(self) -> None:
        self._attempted_at = self.clock()
        try:
            signing_keys = self._client.get_signing_keys()
        except (jwt.PyJWTError, ValueError):
            # Unreachable, or serving no usable set: every cached key stays in use, since each
            # was valid a moment ago and an identity-provider outage must not log everybody out.
            self._last_attempt_failed = True
            return
        self._keys = {key.key_id: key for key in signing_keys if key.key_id}
        self._fetched_at = self._attempted_at
        self._last_attempt_failed = False
