"""Liveness, readiness and version: what a platform and an operator read without the code."""

import socket
import uuid
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from service.app import create_app
from service.db.migrate import head_revision, upgrade
from service.settings import Settings
from tests.databases import fresh_database, issue_token


def test_liveness_and_readiness_need_no_token(client: TestClient[Any]) -> None:
    bare = {"Authorization": ""}
    assert client.get("/health/live", headers=bare).json() == {"status": "ok"}
    ready = client.get("/health/ready", headers=bare)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "schema_revision": head_revision()}


def test_version_names_package_api_and_schema(client: TestClient[Any], database_url: str) -> None:
    body = client.get("/api/v1/version").json()
    assert body["version"] == "0.1.0" and body["api_version"] == "1.0.0"
    assert body["schema_revision"] == body["schema_head"] == head_revision()
    assert body["git_revision"] is None or len(body["git_revision"]) == 40
    assert client.get("/api/v1/version", headers={"Authorization": ""}).status_code == 401


def test_not_ready_while_the_schema_is_behind(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path, migrate=False) as url:
        upgrade(url, "0008")
        with TestClient(create_app(Settings(database_url=url, log_level="WARNING"))) as client:
            assert client.get("/health/live").status_code == 200
            refused = client.get("/health/ready")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            assert refused.json()["type"] == "/problems/not-ready"
            assert f"at 0008, this version needs {head_revision()}" in refused.json()["detail"]
            upgrade(url)
            assert client.get("/health/ready").status_code == 200


def test_not_ready_when_the_database_does_not_answer() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing"
    settings = Settings(database_url=url, log_level="WARNING", db_connect_timeout_s=2)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/live").status_code == 200
        refused = client.get("/health/ready")
        assert refused.status_code == 503 and refused.json()["type"] == "/problems/not-ready"
        assert "did not answer" in refused.json()["detail"]
        token = f"lor_{uuid.uuid4().hex}"
        # The version still answers what it knows; without the database no token can be checked.
        assert client.get("/api/v1/version", headers={"Authorization": f"Bearer {token}"}).status_code == 503


def test_a_reader_may_read_the_version(database_url: str) -> None:
    secret = issue_token(database_url, f"probe-{uuid.uuid4().hex[:6]}", "reader")
    with TestClient(create_app(Settings(database_url=database_url, log_level="WARNING"))) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/v1/version", headers=headers).json()["schema_revision"] == head_revision()
