"""Structured logs with a request id, and Prometheus metrics per route template, in process."""

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar import get
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.db.session import create_engine
from service.observability import metrics
from service.settings import Settings
from tests import factories as f
from tests.conftest import RegistryTestClient
from tests.databases import fresh_database, issue_token

PATIENT_ROUTE = "/api/v1/patients/{id}"


@get("/test-only/log-inside", sync_to_thread=False)
def log_inside() -> dict[str, str]:
    logging.getLogger("service.test").info("inside the handler")
    return {"ok": "yes"}


@get("/test-only/fail", sync_to_thread=False)
def fail() -> None:
    raise RuntimeError("boom")


@pytest.fixture
def served(backend: str, tmp_path: Path) -> Iterator[tuple[TestClient[Any], io.StringIO]]:
    """A client of a fresh app (with two extra routes) and everything its log handler writes."""
    with fresh_database(backend, tmp_path) as url:
        app = create_app(Settings(database_url=url, rate_limit_per_minute=0))
        app.register(log_inside)
        app.register(fail)
        lines = io.StringIO()
        handler = next(
            h
            for h in logging.getLogger().handlers
            if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
        )
        assert isinstance(handler, logging.StreamHandler)
        previous = handler.setStream(lines)
        secret = issue_token(url, f"observer-{uuid.uuid4().hex[:6]}", "curator")
        try:
            with RegistryTestClient(app) as client:
                client.headers["Authorization"] = f"Bearer {secret}"
                yield client, lines
        finally:
            handler.setStream(previous)


def _records(lines: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines.getvalue().splitlines()]


def test_every_line_is_json_and_carries_the_request_id(served: tuple[TestClient[Any], io.StringIO]) -> None:
    client, lines = served
    response = client.get("/test-only/log-inside", headers={"X-Request-ID": "trace-42.a"})
    assert response.headers["X-Request-ID"] == "trace-42.a"
    records = _records(lines)
    inside = [r for r in records if r["event"] == "inside the handler"]
    access = [r for r in records if r["event"] == "request" and r["logger"] == "service.access"]
    assert inside and inside[0]["request_id"] == "trace-42.a" and inside[0]["level"] == "info"
    assert access[-1]["request_id"] == "trace-42.a"
    assert {"time", "method", "route", "status", "duration_ms"} <= set(access[-1])


@pytest.mark.parametrize("offered", [None, "", "two words", "x" * 129, 'inject"\n{"level":"error"}'])
def test_a_missing_or_malformed_request_id_is_replaced(
    served: tuple[TestClient[Any], io.StringIO], offered: str | None
) -> None:
    client, lines = served
    headers = {} if offered is None else {"X-Request-ID": offered}
    given = client.get("/health/live", headers=headers).headers["X-Request-ID"]
    assert len(given) == 32 and int(given, 16) >= 0 and given != offered
    assert [r for r in _records(lines) if r["logger"] == "service.access"][-1]["request_id"] == given


def test_the_access_line_names_the_route_template_never_the_query_or_token(
    served: tuple[TestClient[Any], io.StringIO],
) -> None:
    client, lines = served
    patient = f.patient(client, f.study(client)["id"], notes="Relapsed after the third cycle")
    read = client.get(f"/api/v1/patients/{patient['id']}")
    assert read.status_code == 200
    # Parameters the operation does not know are refused (400), and logged no more than others.
    refused = client.get(
        f"/api/v1/patients/{patient['id']}", params={"access_token": "lor_in-query", "q": "relapsed"}
    )
    assert refused.status_code == 400 and "lor_in-query" not in refused.text
    # The test client's own logger (httpx) prints its URLs: only the service's lines count here.
    text = str([r for r in _records(lines) if r["logger"] != "httpx"])
    routed = [r for r in _records(lines) if r.get("route") == PATIENT_ROUTE]
    assert [(r["method"], r["status"]) for r in routed[-2:]] == [("GET", 200), ("GET", 400)]
    assert routed[-1]["duration_ms"] >= 0
    secret = client.headers["Authorization"].removeprefix("Bearer ")
    for private in (patient["id"], "lor_in-query", "relapsed", "Relapsed", secret):
        assert private not in text


def _scrape(client: TestClient[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-type"].count("charset") == 1
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_latency_errors_pool_and_audit(
    served: tuple[TestClient[Any], io.StringIO],
) -> None:
    client, _ = served
    study = f.study(client)
    patient = f.patient(client, study["id"])
    before = _scrape(client)
    for _ in range(3):
        assert client.get(f"/api/v1/patients/{patient['id']}").status_code == 200
    assert client.get(f"/api/v1/patients/{uuid.uuid4()}").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/test-only/fail").status_code == 500
    assert client.patch(f"/api/v1/patients/{patient['id']}", json={"notes": "re-read"}).status_code == 200
    after = _scrape(client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    # Per route template: the reads (three, and the one the test client makes for the PATCH's
    # If-Match) and the 404 of an unknown id share one route.
    assert grew("registry_http_requests_total", method="GET", route=PATIENT_ROUTE, status="200") == 4
    assert grew("registry_http_requests_total", method="GET", route=PATIENT_ROUTE, status="404") == 1
    assert grew("registry_http_request_duration_seconds_count", method="GET", route=PATIENT_ROUTE) == 5
    assert grew("registry_http_requests_total", method="PATCH", route=PATIENT_ROUTE, status="200") == 1
    assert grew("registry_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert grew("registry_http_server_errors_total", method="GET", route="/test-only/fail") == 1
    assert grew("registry_http_server_errors_total", method="GET", route=PATIENT_ROUTE) == 0
    assert not any(patient["id"] in str(labels) for _, labels in after)
    # One update, one audit record; connections in use is a gauge that the pool keeps.
    assert grew("registry_audit_records_written_total") == 1
    assert ("registry_db_connections_in_use", ()) in after
    assert _value(after, "registry_db_connections_in_use") >= 0


def test_a_refused_write_counts_no_audit_record(served: tuple[TestClient[Any], io.StringIO]) -> None:
    client, _ = served
    before = _value(_scrape(client), "registry_audit_records_written_total")
    unknown = {"patient_id": str(uuid.uuid4()), "term": "Sepsis", "grade": 3}
    assert client.post("/api/v1/adverse-events", json=unknown).status_code == 422
    assert _value(_scrape(client), "registry_audit_records_written_total") == before


def test_connections_in_use_is_what_the_pool_has_checked_out(database_url: str) -> None:
    def in_use(text: bytes) -> float:
        return _value(
            {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text.decode())
                for sample in family.samples
            },
            "registry_db_connections_in_use",
        )

    async def held_then_released() -> tuple[float, float]:
        engine = create_engine(Settings(database_url=database_url))
        try:
            async with engine.connect(), engine.connect():
                held = in_use(metrics.scrape(engine))
            return held, in_use(metrics.scrape(engine))
        finally:
            await engine.dispose()

    assert asyncio.run(held_then_released()) == (2.0, 0.0)


def test_odd_methods_share_one_metrics_label(client: TestClient[Any]) -> None:
    for method in ("BREW", "PROPFIND", "X-ODD-1", "X-ODD-2"):
        client.request(method, "/api/v1/studies")
    series = {labels for (name, labels) in _scrape(client) if name == "registry_http_requests_total"}
    methods = {dict(labels)["method"] for labels in series}
    assert "other" in methods and methods <= {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "other",
    }
