"""Tokens this worker verified before, remembered so that a client's next request skips PyJWT.

A client sends the same bearer token with every request until it expires, and verifying it again
(base64, JSON, HMAC or RSA, the claim checks) is the largest fixed cost of a request after SQL.
The rules, so that no answer can change:
- keyed by the whole token string, never by a claim: another token, however similar, misses;
- only successes are remembered: a refused token is verified in full every time, so every answer
  of the token-attack table is the verifier's own;
- an entry is used only while `exp` has not passed, checked on every use (without the leeway: from
  `exp` on the token is verified afresh, and PyJWT applies the leeway exactly as before);
- an entry of a JWKS key is used only while the key set still holds that very key (a rotation that
  withdraws it makes the token fail again, as it would uncached);
- bounded (the oldest entries go first) and per worker: nothing is shared or kept on disk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_SIZE = 4096


@dataclass(frozen=True)
class Verified:
    """What a verified token gave: the principal, until when, and the key that verified it."""

    principal: Any
    expires: float
    kid: str | None
    key: Any


class VerifiedTokens:
    """A bounded map of whole tokens to what their verification gave."""

    def __init__(self, size: int = DEFAULT_SIZE, clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.clock = clock
        self._entries: dict[str, Verified] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Verified | None:
        """The entry of `token` while its `exp` has not passed, else None (and it is dropped)."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if self.clock() < entry.expires:
            return entry
        self.forget(token)
        return None

    def put(self, token: str, entry: Verified) -> None:
        """Remember a verified token, dropping the oldest entries beyond `size`."""
        if self.size <= 0:
            return
        with self._lock:
            self._entries.pop(token, None)
            while len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]
            self._entries[token] = entry

    def forget(self, token: str) -> None:
        """Drop `token`'s entry, if any."""
        with self._lock:
            self._entries.pop(token, None)

    def __len__(self) -> int:
        return len(self._entries)
