"""Probes for the platform and the version of what is running.

- `/health/live`: the process answers (no database): a failing liveness probe means restart it.
- `/health/ready`: the database answers within the connect timeout and its schema is at this
  code's migration head: a failing readiness probe means send no traffic (yet), e.g. while
  another replica is still migrating.
- `/health`: the database check, kept for existing monitors.
- `/api/v1/version`: package version, git revision when known, schema revision.
- `/metrics`: Prometheus metrics (service.observability.metrics)."""

import importlib.metadata
import os
from pathlib import Path

import anyio
from litestar import Request, Response, get
from litestar.datastructures import State
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth.middleware import OPEN, requires
from service.common.schemas import Output
from service.db.session import DbSession
from service.errors import DomainError
from service.observability import metrics

ROOT = Path(__file__).resolve().parents[1]


class Health(Output):
    status: str
    database: str


class Live(Output):
    status: str


class Ready(Output):
    status: str
    database: str
    schema_revision: str


class Version(Output):
    version: str
    api_version: str
    git_revision: str | None
    schema_revision: str | None
    schema_head: str


class NotReady(DomainError):
    status = 503
    slug = "not-ready"
    title = "The service is not ready"
    headers = {"Retry-After": "5"}


@get(
    "/health",
    opt=OPEN,
    operation_id="getHealth",
    tags=["Health"],
    summary="Database check (see also /health/ready)",
)
async def health(db_session: DbSession) -> Health:
    await db_session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")


@get(
    "/health/live",
    opt=OPEN,
    operation_id="getLiveness",
    tags=["Health"],
    summary="Liveness: the process answers",
)
async def live() -> Live:
    return Live(status="ok")


async def _schema_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        value = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    return None if value is None else str(value)


@get(
    "/health/ready",
    opt=OPEN,
    operation_id="getReadiness",
    tags=["Health"],
    summary="Readiness: database reachable in time and schema at the migration head",
    description="503 `not-ready` (with the reason) when the database does not answer within DB_CONNECT_TIMEOUT_S or its schema is not at this version's migration head.",
)
async def ready(state: State) -> Ready:
    head: str = state.schema_head
    try:
        with anyio.fail_after(state.ready_timeout):
            revision = await _schema_revision(state.engine)
    except Exception as exc:  # any failure to reach or read the database means not ready
        raise NotReady(f"the database did not answer ({type(exc).__name__})") from None
    if revision != head:
        raise NotReady(f"the database schema is at {revision or 'no revision'}, this version needs {head}")
    return Ready(status="ready", database="ok", schema_revision=revision)


def git_revision() -> str | None:
    """GIT_REVISION (set when the image is built), else the checkout's HEAD when there is one."""
    if os.environ.get("GIT_REVISION"):
        return os.environ["GIT_REVISION"]
    head = ROOT / ".git" / "HEAD"
    try:
        content = head.read_text().strip()
        if content.startswith("ref: "):
            return (ROOT / ".git" / content[5:]).read_text().strip()
        return content
    except OSError:
        return None


@get(
    "/api/v1/version",
    operation_id="getVersion",
    tags=["Health"],
    summary="Package version, git revision when known, and schema revision",
    guards=[requires("reader")],
)
async def version(request: Request[object, object, State], state: State) -> Version:
    try:
        revision = await _schema_revision(state.engine)
    except Exception:  # the version is still worth answering without the database
        revision = None
    return Version(
        version=importlib.metadata.version("leukemia-registry"),
        api_version=request.app.openapi_config.version if request.app.openapi_config else "",
        git_revision=git_revision(),
        schema_revision=revision,
        schema_head=state.schema_head,
    )


@get(
    "/metrics",
    opt=OPEN,
    operation_id="getMetrics",
    tags=["Health"],
    summary="Prometheus metrics (text exposition format 0.0.4)",
    description="Requests, latency histogram and 5xx responses per route template; database connections in "
    "use; audit records written. Open, like the probes: it names routes, never ids or data.",
    media_type="text/plain; version=0.0.4; charset=utf-8",
    sync_to_thread=False,
)
def prometheus_metrics(state: State) -> Response[bytes]:
    return Response(content=metrics.scrape(state.engine), media_type=metrics.CONTENT_TYPE)
