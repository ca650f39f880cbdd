"""A short-lived, per-process cache of token lookups, so that most requests authenticate without
touching the database. Only found tokens are kept (a token created by another process works at
once); a cached entry is trusted for `ttl` seconds, which bounds how late a revocation made by
another process or replica takes effect. Expiry is checked on every request."""

import time
from datetime import datetime
from typing import NamedTuple

MAX_ENTRIES = 10_000


class TokenRow(NamedTuple):
    name: str
    role: str
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, TokenRow]] = {}

    def get(self, digest: str) -> TokenRow | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: str, row: TokenRow) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # bounded memory; the next lookups refill it
        self._entries[digest] = (time.monotonic(), row)

    def clear(self) -> None:
        """Forget everything (after this process revokes a token)."""
        self._entries.clear()
