"""Signing keys from a JWKS endpoint: cached by `kid`, refetched at most once a minute.

PyJWKClient fetches the set; the cache is ours. An outage of the identity provider must not log
everybody out, so keys are kept while the endpoint cannot be reached, for at most
`max_stale_seconds`. A set that answers is the truth, even when it holds no usable key: publishing
an empty set is how a leaked key is withdrawn, so that answer revokes every cached key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import jwt

REFETCH_INTERVAL_SECONDS = 60.0
MAX_AGE_SECONDS = 600.0
FETCH_TIMEOUT_SECONDS = 3.0
DEFAULT_MAX_STALE_SECONDS = 86400


class UnknownSigningKey(Exception):
    """The token's `kid` is in no key set the endpoint served (a 401)."""


class KeySetUnavailable(Exception):
    """The `kid` is not cached and the endpoint did not answer (a 503: try again)."""


class StaleSigningKeys(Exception):
    """The endpoint has not answered for longer than keys are kept through an outage (a 401)."""


class JwksKeys:
    """The signing keys of one JWKS URL, by `kid`."""

    def __init__(
        self,
        url: str,
        clock: Callable[[], float] = time.monotonic,
        max_stale_seconds: float = DEFAULT_MAX_STALE_SECONDS,
    ) -> None:
        self.url = url
        self.clock = clock
        self.max_stale_seconds = max_stale_seconds
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
            if key is not None and self._is_stale():
                raise StaleSigningKeys(self.url)
            if key is not None:
                return key
            if self._last_attempt_failed:
                raise KeySetUnavailable(self.url)
            raise UnknownSigningKey(kid)

    def _is_old(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at >= MAX_AGE_SECONDS

    def _is_stale(self) -> bool:
        # Keys kept through an outage: a withdrawn key must not live on for as long as it lasts.
        assert self._fetched_at is not None
        return self.clock() - self._fetched_at > self.max_stale_seconds

    def _may_fetch(self) -> bool:
        # Unknown kids are free for anyone to send: they must not turn into a flood of fetches.
        return (
            self._attempted_at is None
            or self.clock() - self._attempted_at >= REFETCH_INTERVAL_SECONDS
        )

    def _refresh(self) -> None:
        self._attempted_at = self.clock()
        try:
            keys = signing_keys(self._client.fetch_data())
        except (jwt.PyJWTError, ValueError):
            # Unreachable, an HTTP error, or no key set at all (an error page): every cached key
            # stays in use, since each was valid a moment ago (for at most max_stale_seconds).
            self._last_attempt_failed = True
            return
        self._keys = keys
        self._fetched_at = self._attempted_at
        self._last_attempt_failed = False


def signing_keys(answer: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by `kid`; {} when it holds none.

    Raises ValueError when the document is no key set (no `keys` list).
    """
    members = answer.get("keys")
    if not isinstance(members, list):
        raise ValueError("the JWKS endpoint answered without a 'keys' list")
    keys = {}
    for member in members:
        if not isinstance(member, dict) or member.get("use", "sig") != "sig":
            continue  # `enc` keys encrypt; they never sign a token
        try:
            key = jwt.PyJWK(member)
        except jwt.PyJWTError:
            continue  # a kind of key this service cannot use
        if isinstance(key.key_id, str) and key.key_id:
            keys[key.key_id] = key
    return keys
