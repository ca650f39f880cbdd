"""Exports that hold nothing while the client reads, on both databases: the body is a complete
snapshot with its length and digest, builds are bounded per process, and slow readers leave
the connection pool to everyone else (a real server, clients that do not read)."""

import base64
import hashlib
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from tests import factories as f
from tests.databases import fresh_database, issue_token
from tests.integration.test_bulk_import import document
from tests.integration.test_faults import _free_port, _serve, _wait_healthy

API = "/api/v1"


def test_an_export_carries_its_length_and_digest(client: TestClient[Any]) -> None:
    study = client.post(f"{API}/studies/import", json=document(patients=5)).json()["study_id"]
    for format in ("json", "ndjson", "csv", "fhir", "ctgov"):
        response = client.get(f"{API}/studies/{study}/export", params={"format": format})
        assert response.status_code == 200, format
        assert int(response.headers["content-length"]) == len(response.content)
        digest = base64.b64encode(hashlib.sha256(response.content).digest()).decode()
        assert response.headers["repr-digest"] == f"sha-256=:{digest}:", format


def test_exports_beyond_the_slots_are_refused_with_retry_after(client: TestClient[Any]) -> None:
    study = f.study(client)
    slots = client.app.state.export_slots
    slots.building = slots.limit  # every slot busy building
    try:
        busy = client.get(f"{API}/studies/{study['id']}/export")
    finally:
        slots.building = 0
    assert busy.status_code == 429 and busy.headers["retry-after"] == "10"
    assert busy.json()["type"] == "/problems/exports-busy"
    assert client.get(f"{API}/studies/{study['id']}/export").status_code == 200
    assert slots.building == 0  # a finished or refused build gives its slot back


def test_a_missing_study_is_a_404_before_any_byte(client: TestClient[Any]) -> None:
    response = client.get(f"{API}/studies/{uuid.uuid4()}/export")
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/problem")


def _stalled_export(port: int, path: str, secret: str) -> socket.socket:
    """Ask for an export and read only its status line: the client then stops reading."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n\r\n".encode())
    assert sock.recv(12).startswith(b"HTTP/1.1 200")
    return sock


def test_slow_export_readers_hold_no_connection(backend: str, tmp_path: Path) -> None:
    """Six clients that stop reading a 2 MB export, with a pool of 2 (+1) connections that times
    out after 2 s: other reads and writes still succeed. When each stream held its session, the
    pool was theirs and the others got 503."""
    with fresh_database(backend, tmp_path) as url:
        secret = issue_token(url, "slow", "admin")
        headers = {"Authorization": f"Bearer {secret}"}
        port, log = _free_port(), tmp_path / "server.log"
        server = _serve(url, port, log, env={"DB_POOL_SIZE": "2", "DB_POOL_TIMEOUT_S": "2"})
        stalled: list[socket.socket] = []
        try:
            _wait_healthy(port, server, log)
            base = f"http://127.0.0.1:{port}{API}"
            created = httpx.post(
                f"{base}/studies/import", json=document(patients=2500), headers=headers, timeout=120
            )
            assert created.status_code == 201, created.text
            export = f"/api/v1/studies/{created.json()['study_id']}/export"
            stalled = [_stalled_export(port, export, secret) for _ in range(6)]
            time.sleep(0.5)  # the streams are stuck on full socket buffers now
            read = httpx.get(f"{base}/studies", headers=headers, timeout=30)
            write = httpx.post(
                f"{base}/studies",
                json={"title": "during", "design": "case_series"},
                headers=headers,
                timeout=30,
            )
            assert (read.status_code, write.status_code) == (200, 201), (read.text, write.text)
        finally:
            for sock in stalled:
                sock.close()
            server.terminate()
            server.wait(20)


def test_a_sqlite_writer_that_cannot_get_its_turn_is_a_503_and_writes_nothing(
    client: TestClient[Any], backend: str
) -> None:
    state = client.app.state
    if backend != "sqlite":
        assert state.sqlite_writers is None  # Postgres has row locks, not one writer
        return
    waited = state.sqlite_write_wait_s
    state.sqlite_write_wait_s = 0.2
    client.blocking_portal.call(state.sqlite_writers.acquire)  # another write holds the turn
    try:
        refused = client.post(f"{API}/studies", json={"title": "late", "design": "case_series"})
    finally:
        state.sqlite_writers.release()
        state.sqlite_write_wait_s = waited
    assert refused.status_code == 503 and refused.headers["retry-after"]
    titles = [s["title"] for s in client.get(f"{API}/studies").json()["items"]]
    assert "late" not in titles
