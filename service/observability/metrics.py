"""Prometheus metrics: requests, latency and server errors per route template, database
connections in use, audit records written.

Labels are route templates (`/api/v1/patients/{patient_id:uuid}`), never raw paths, so a
scrape stays the same size whatever ids are requested; a path that matched no route is
counted as `<unmatched>`.

With several server processes (`WEB_CONCURRENCY` > 1) `serve` sets PROMETHEUS_MULTIPROC_DIR
before the workers start: each process then writes its values to files there and a scrape,
whichever worker answers it, sums them (prometheus-client's multiprocess mode)."""

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.ext.asyncio import AsyncEngine

UNMATCHED = "<unmatched>"
# Without its charset: Litestar appends the response's own (the exposition format's constant
# carries one too, and the header said it twice).
CONTENT_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")

REQUESTS = Counter(
    "registry_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "registry_http_request_duration_seconds",
    "Time from request to the end of the response, by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SERVER_ERRORS = Counter(
    "registry_http_server_errors", "Responses with a 5xx status, by route template", ["method", "route"]
)
POOL_IN_USE = Gauge(
    "registry_db_connections_in_use",
    "Database connections checked out of the pool (held by a request or a command)",
    multiprocess_mode="livesum",
)
AUDIT_RECORDS = Counter("registry_audit_records_written", "Audit records committed to the trail")
ANALYSIS_ANSWERS = Counter(
    "registry_analysis_answers",
    "Analysis answers: computed, served from the store (stored), or not modified (304)",
    ["source"],
)

# (method, route, status) -> the labelled children: labels() takes a lock and builds a key on
# every call; a request reuses the children of the last request on the same route.
_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}


# HTTP methods get a label of their own; any other (a client can send any token) is `other`,
# so that odd requests cannot add series without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        children = (
            REQUESTS.labels(method, route, str(status)),
            LATENCY.labels(method, route),
            SERVER_ERRORS.labels(method, route) if status >= 500 else None,
        )
        _children[key] = children
    requests, latency, errors = children
    requests.inc()
    latency.observe(seconds)
    if errors is not None:
        errors.inc()


def audit_records_written(count: int) -> None:
    AUDIT_RECORDS.inc(count)


def sample_pool(engine: AsyncEngine) -> None:
    """Connections this process has checked out now: sampled after each request and before each
    scrape (a sample cannot drift, as counting checkout and checkin events could)."""
    pool = engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", None)
    if checked_out is not None:
        POOL_IN_USE.set(checked_out())


def scrape(engine: AsyncEngine) -> bytes:
    """The text exposition format: this process's values, or every worker's in multiprocess mode."""
    sample_pool(engine)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
