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
    # Requests per token per minute; 0 turns the limit off. Counted by each process on its own
    # unless rate_limit_store_url names a Redis/Valkey server that every replica shares.
    rate_limit_per_minute: int = 600
    rate_limit_store_url: str | None = None
    # With the limit on: failed authentications (a wrong, revoked or expired token) allowed per
    # client address and minute before that address gets 429 (token guessing).
    auth_failures_per_minute: int = 30
    # Client-side bounds, so that a refused, frozen or overloaded database is a 503 within a
    # known time instead of a request that never ends: connecting, one command (Postgres), and
    # waiting for a pooled connection.
    db_connect_timeout_s: float = 5.0
    db_command_timeout_s: float = 35.0
    db_pool_timeout_s: float = 10.0
    # Connections each process keeps open. Requests beyond it open extra connections that are
    # closed again after use: keep it at or above the number of requests served at once.
    db_pool_size: int = 20
    # SQLite: how long a writer waits for the write lock before giving up (503).
    sqlite_busy_timeout_ms: int = 30_000
    # Optional secret: audit records are then chained with HMAC-SHA256 instead of plain SHA-256,
    # so the chain cannot be recomputed after an edit without the key.
    audit_hmac_key: str | None = None
    # `serve` loads the curated seed dataset into an empty database (off for a production
    # database that should start empty).
    seed_on_start: bool = True
    # How long a token lookup is reused (0: every request reads the token table). A revocation
    # or expiry takes effect at once on the process that handled it, and on every other process
    # or replica within this many seconds.
    token_cache_seconds: float = 5.0
    # Statistics, plots and checks of import documents run in this many worker processes of each
    # server process (each about 150 MB with matplotlib); a request waiting longer than
    # heavy_wait_seconds for one gets 503 with Retry-After.
    heavy_workers: int = 2
    heavy_wait_seconds: float = 30.0
    # Exports built at once by each process (each holds one connection while it builds; the
    # client then reads a file): more are refused with 429 and Retry-After.
    export_builds: int = 2
    # Server processes of `serve` (uvicorn workers). SQLite is served by one: its writers take
    # turns inside a process.
    web_concurrency: int = 1
    # `serve` waits this long for the database to accept connections before giving up.
    db_wait_seconds: float = 60.0
    # After SIGTERM, requests in flight get this long to finish before the server stops.
    shutdown_grace_seconds: int = 30
    # OpenID Connect sign-in (service.auth.oidc), on when issuer, audience and JWKS are all set:
    # the JWKS is a URL (fetched, cached 5 minutes) or a file path (offline use).
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks: str | None = None
    oidc_claim: str = "registry_access"
    oidc_algorithms: tuple[str, ...] = ("RS256", "ES256")
    # Counts below this are withheld from an aggregate grant's analyses (0: shown).
    aggregate_min_count: int = 5
    # Analysis answers each process keeps for repeats, in MiB (0: none kept; ETags still sent).
    analysis_cache_mb: int = 64
    # Data cuts whose frozen database each process keeps open for analyses on them (a SQLite file
    # each, in the temporary directory); the least recently used is closed first.
    data_cut_databases: int = 4
    # The licence a data cut's release package declares (an SPDX licence URL).
    data_cut_license: str = "https://spdx.org/licenses/CC-BY-4.0"

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
            db_connect_timeout_s=float(os.environ.get("DB_CONNECT_TIMEOUT_S", "5")),
            db_command_timeout_s=float(os.environ.get("DB_COMMAND_TIMEOUT_S", "35")),
            db_pool_timeout_s=float(os.environ.get("DB_POOL_TIMEOUT_S", "10")),
            db_pool_size=int(os.environ.get("DB_POOL_SIZE", "20")),
            sqlite_busy_timeout_ms=int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "30000")),
            audit_hmac_key=os.environ.get("AUDIT_HMAC_KEY") or None,
            seed_on_start=os.environ.get("SEED_ON_START", "1").lower() not in ("0", "false", "no"),
            token_cache_seconds=float(os.environ.get("TOKEN_CACHE_SECONDS", "5")),
            heavy_workers=int(os.environ.get("HEAVY_WORKERS", "2")),
            heavy_wait_seconds=float(os.environ.get("HEAVY_WAIT_SECONDS", "30")),
            export_builds=int(os.environ.get("EXPORT_BUILDS", "2")),
            rate_limit_store_url=os.environ.get("RATE_LIMIT_STORE_URL") or None,
            auth_failures_per_minute=int(os.environ.get("AUTH_FAILURES_PER_MINUTE", "30")),
            web_concurrency=int(os.environ.get("WEB_CONCURRENCY", "1")),
            db_wait_seconds=float(os.environ.get("DB_WAIT_SECONDS", "60")),
            shutdown_grace_seconds=int(os.environ.get("SHUTDOWN_GRACE_SECONDS", "30")),
            aggregate_min_count=int(os.environ.get("AGGREGATE_MIN_COUNT", "5")),
            analysis_cache_mb=int(os.environ.get("ANALYSIS_CACHE_MB", "64")),
            data_cut_databases=int(os.environ.get("DATA_CUT_DATABASES", "4")),
            data_cut_license=os.environ.get("DATA_CUT_LICENSE") or "https://spdx.org/licenses/CC-BY-4.0",
            oidc_issuer=os.environ.get("OIDC_ISSUER") or None,
            oidc_audience=os.environ.get("OIDC_AUDIENCE") or None,
            oidc_jwks=os.environ.get("OIDC_JWKS") or None,
            oidc_claim=os.environ.get("OIDC_CLAIM") or "registry_access",
            oidc_algorithms=tuple(
                a.strip() for a in os.environ.get("OIDC_ALGORITHMS", "RS256,ES256").split(",") if a.strip()
            ),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
