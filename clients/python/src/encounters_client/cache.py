"""The optional ETag cache: the last list of each URL and token, asked for again conditionally."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from encounters_client.models import Encounter

Key = tuple[str, str]  # the URL with its query, and the token's digest
Entry = tuple[str, tuple[Encounter, ...]]  # the ETag, and the list it stands for


class EtagCache:
    """The last list of each URL and token, with its ETag; the least recently used go first."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def etag(self, key: Key) -> str | None:
        """The ETag remembered for `key`."""
        with self._lock:
            entry = self._entries.get(key)
        return entry[0] if entry else None

    def remembered(self, key: Key) -> list[Encounter] | None:
        """The list remembered for `key` (a new list each time)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry:
                self._entries.move_to_end(key)
        return list(entry[1]) if entry else None

    def remember(self, key: Key, etag: str, encounters: Sequence[Encounter]) -> None:
        """Keep `encounters` and their ETag for `key`."""
        with self._lock:
            self._entries[key] = (etag, tuple(encounters))
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
