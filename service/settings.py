"""One typed settings object, read from the environment once at start."""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("var/registry.db")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # Postgres only: no statement may hold a connection longer than this.
    statement_timeout_ms: int = 30_000
    # Requests per token per minute, counted by each replica on its own; 0 turns the limit off.
    rate_limit_per_minute: int = 600

    @classmethod
    def from_env(cls) -> "Settings":
        url = os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
        return cls(
            database_url=url,
            host=os.environ.get("HOST", "127.0.0.1"),
            port=int(os.environ.get("PORT", "8000")),
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
            statement_timeout_ms=int(os.environ.get("STATEMENT_TIMEOUT_MS", "30000")),
            rate_limit_per_minute=int(os.environ.get("RATE_LIMIT_PER_MINUTE", "600")),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
