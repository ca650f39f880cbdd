"""A short-lived, per-process cache of token lookups, so that most requests authenticate without
touching the database. A cached entry is trusted for `ttl` seconds, which bounds how late a
revocation made by another process or replica takes effect. Expiry is checked on every request.

Unknown tokens are remembered too, for at most UNKNOWN_TTL seconds, so that a client repeating
a wrong token costs no database transaction each time (issued tokens are random: one is never
looked up before it exists)."""

import time
from datetime import datetime
from typing import Any, NamedTuple

MAX_ENTRIES = 10_000
UNKNOWN_TTL = 2.0


class TokenRow(NamedTuple):
    name: str
    role: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    grants: tuple[Any, ...] = ()


class TokenCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, TokenRow]] = {}
        self._unknown: dict[str, float] = {}

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

    def known_unknown(self, digest: str) -> bool:
        """Whether this digest was looked up and not found in the last UNKNOWN_TTL seconds."""
        seen = self._unknown.get(digest)
        return seen is not None and time.monotonic() - seen <= min(self.ttl, UNKNOWN_TTL)

    def put_unknown(self, digest: str) -> None:
        if self.ttl <= 0:
            return
        if len(self._unknown) >= MAX_ENTRIES:
            self._unknown.clear()
        self._unknown[digest] = time.monotonic()

    def clear(self) -> None:
        """Forget everything (after this process creates or revokes a token)."""
        self._entries.clear()
        self._unknown.clear()
