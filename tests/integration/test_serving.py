# ruff: noqa: S603 - runs this environment's own console script and the test's redis-server
"""The production entrypoint as a container runs it (`registry serve`), outside a container:
it waits for the database, drains requests in flight on SIGTERM, serves with several workers
whose metrics add up, and replicas share one rate limit through Redis/Valkey."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from service.app import create_app
from service.auth import rate_limit
from service.auth.rate_limit import SharedCounter
from service.settings import Settings
from tests.databases import POSTGRES_URL, REQUIRE_POSTGRES, fresh_database, issue_token
from tests.faults import FaultyProxy
from tests.integration.test_faults import _free_port, _wait_healthy, postgres_behind_proxy

__all__ = ["postgres_behind_proxy"]  # a fixture, shared with the fault tests

SCRIPT = Path(sys.executable).parent / "registry"


def _start(url: str, port: int, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "SEED_ON_START": "0",
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "INFO",
        **env,
    }
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("ab") as out:
        return subprocess.Popen([str(SCRIPT), "serve"], env=environment, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _json_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_lets_a_request_in_flight_finish_then_exits(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        port, log = _free_port(), tmp_path / "serve.log"
        secret = issue_token(url, "drain", "curator")
        server = _start(url, port, log)
        try:
            _wait_healthy(port, server, log)
            body = json.dumps({"title": "Created while draining", "design": "case_series"}).encode()
            head = (
                f"POST /api/v1/studies HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {secret}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                connection.sendall(head + body[:10])  # the request has started: half its body is sent
                time.sleep(0.5)
                server.send_signal(signal.SIGTERM)
                for _ in range(40):  # it stops taking new connections at once...
                    if _refused(port):
                        break
                    time.sleep(0.1)
                assert _refused(port)
                assert server.poll() is None  # ...but waits for the request in flight
                connection.sendall(body[10:])
                answer = connection.recv(65536).decode()
            assert answer.startswith("HTTP/1.1 201"), answer
            # Then it exits by the signal it was sent (uvicorn re-raises it: 143 in a container).
            assert server.wait(timeout=30) == -signal.SIGTERM
        finally:
            _stop(server)
        # The write landed, and was logged with its request id and status.
        access = [r for r in _json_lines(log) if r.get("logger") == "service.access"]
        assert any(r["route"] == "/api/v1/studies" and r["status"] == 201 and r["request_id"] for r in access)


def test_serve_waits_for_a_database_that_is_not_up_yet(
    postgres_behind_proxy: tuple[str, FaultyProxy], tmp_path: Path
) -> None:
    url, proxy = postgres_behind_proxy
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.set("refuse")
    port, log = _free_port(), tmp_path / "serve.log"
    server = _start(proxied, port, log, DB_WAIT_SECONDS="60", DB_CONNECT_TIMEOUT_S="1")
    try:
        for _ in range(200):
            if any(r.get("event") == "waiting for the database" for r in _json_lines(log)):
                break
            assert server.poll() is None, log.read_text()
            time.sleep(0.1)
        assert server.poll() is None
        proxy.set("forward")
        _wait_healthy(port, server, log)
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()["status"] == "ready"
    finally:
        _stop(server)
    waits = [r for r in _json_lines(log) if r.get("event") == "waiting for the database"]
    assert waits and waits[0]["attempt"] == 1 and "password" not in log.read_text()
    assert proxied not in log.read_text()


def test_serve_gives_up_when_the_database_never_answers(tmp_path: Path) -> None:
    closed = _free_port()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/test"
    log = tmp_path / "serve.log"
    server = _start(url, _free_port(), log, DB_WAIT_SECONDS="2", DB_CONNECT_TIMEOUT_S="1")
    assert server.wait(timeout=60) == 1
    events = [r["event"] for r in _json_lines(log)]
    assert "waiting for the database" in events
    assert any(e.startswith("not starting: the database did not answer within 2 s") for e in events)


def test_the_server_app_is_built_with_its_startup_objects_frozen(tmp_path: Path) -> None:
    """A full collection would walk every imported library and the routes (90 ms with the loop
    stopped); the server's app factory freezes them once built (service.server)."""
    script = (
        "import gc; from service.server import app_from_environment; "
        "before = gc.get_freeze_count(); app_from_environment(); print(before, gc.get_freeze_count())"
    )
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'frozen.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 100_000


def _metric(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_two_workers_serve_and_their_metrics_add_up(backend: str, tmp_path: Path) -> None:
    if backend != "postgres":
        pytest.skip("SQLite is served by one worker")
    with fresh_database(backend, tmp_path) as url:
        port, log, metrics_dir = _free_port(), tmp_path / "serve.log", tmp_path / "metrics"
        metrics_dir.mkdir()
        secret = issue_token(url, "workers", "reader")
        server = _start(url, port, log, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        try:
            _wait_healthy(port, server, log)
            for _ in range(20):  # a new connection each: either worker may take it
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/studies", headers={"Authorization": f"Bearer {secret}"}
                )
                assert response.status_code == 200
            scrapes = [httpx.get(f"http://127.0.0.1:{port}/metrics").text for _ in range(4)]
            # Two worker processes each write their own files (the supervisor, which migrated
            # before they started, may have written one of its own)...
            pids = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("*.db")} - {str(server.pid)}
            assert len(pids) == 2, pids
            # ...and whichever answers the scrape reports the sum of both.
            for text in scrapes:
                assert (
                    _metric(text, "registry_http_requests_total", route="/api/v1/studies", status="200") == 20
                )
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        finally:
            _stop(server)


REDIS_PIDS: dict[str, int] = {}


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis (or Valkey) server of the test's own, on a free port, without persistence."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        if REQUIRE_POSTGRES:  # CI installs it (.ci/run)
            raise RuntimeError("redis-server or valkey-server is needed")
        pytest.skip("no redis-server or valkey-server")
    port = _free_port()
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        url = f"redis://127.0.0.1:{port}/0"
        REDIS_PIDS[url] = server.pid
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.skipif(not (POSTGRES_URL or REQUIRE_POSTGRES), reason="replicas share one Postgres")
def test_two_replicas_share_one_rate_limit_through_redis(redis_url: str, tmp_path: Path) -> None:
    with fresh_database("postgres", tmp_path) as url:
        secret = issue_token(url, f"limited-{uuid.uuid4().hex[:6]}", "reader")
        ports = [_free_port(), _free_port()]
        logs = [tmp_path / f"replica-{i}.log" for i in range(2)]
        limit = {"RATE_LIMIT_PER_MINUTE": "5", "RATE_LIMIT_STORE_URL": redis_url}
        replicas = [_start(url, port, log, **limit) for port, log in zip(ports, logs, strict=True)]
        try:
            for port, process, log in zip(ports, replicas, logs, strict=True):
                _wait_healthy(port, process, log)
            statuses = [
                httpx.get(
                    f"http://127.0.0.1:{ports[i % 2]}/api/v1/studies",
                    headers={"Authorization": f"Bearer {secret}"},
                ).status_code
                for i in range(8)
            ]
        finally:
            for process in replicas:
                _stop(process)
    # Five in the minute across both replicas (each alone would have allowed eight: 4 + 4).
    assert statuses == [200] * 5 + [429] * 3


def _alternate(apps: list[Any], secret: str, requests: int) -> list[int]:
    clients = [TestClient(app) for app in apps]
    for client in clients:
        client.__enter__()
    try:
        return [
            clients[i % 2].get("/api/v1/studies", headers={"Authorization": f"Bearer {secret}"}).status_code
            for i in range(requests)
        ]
    finally:
        for client in clients:
            client.__exit__(None, None, None)


def test_without_a_store_each_process_counts_alone_and_with_one_they_share(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limit, "clock", lambda: 1_800_000_000.0)  # one window throughout
    secret = issue_token(database_url, f"limit-{uuid.uuid4().hex[:6]}", "reader")
    alone = [create_app(Settings(database_url=database_url, rate_limit_per_minute=3)) for _ in range(2)]
    assert _alternate(alone, secret, 6) == [200] * 6  # three each
    shared = Settings(database_url=database_url, rate_limit_per_minute=3, rate_limit_store_url=redis_url)
    other = issue_token(database_url, f"limit-{uuid.uuid4().hex[:6]}", "reader")
    assert _alternate([create_app(shared) for _ in range(2)], other, 6) == [200] * 3 + [429] * 3


def test_an_unreachable_store_leaves_requests_unlimited_and_says_so(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = issue_token(database_url, f"limit-{uuid.uuid4().hex[:6]}", "reader")
    down = f"redis://127.0.0.1:{_free_port()}/0"
    app = create_app(Settings(database_url=database_url, rate_limit_per_minute=2, rate_limit_store_url=down))
    SharedCounter.warned_at = 0.0
    with TestClient(app) as client:
        statuses = [
            client.get("/api/v1/studies", headers={"Authorization": f"Bearer {secret}"}).status_code
            for _ in range(4)
        ]
    assert statuses == [200] * 4
    warnings = [r for r in caplog.records if r.name == "service.rate_limit"]
    assert (
        len(warnings) == 1 and warnings[0].getMessage() == "rate-limit store unreachable: limit not applied"
    )


def test_two_processes_sharing_a_store_allow_exactly_the_limit_under_a_burst(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """240 requests at once through two apps (each its own Redis client), limit 60: exactly 60
    pass. A get-then-set count lets more through (63-81 were measured before INCR).

    What is under test is the atomic count, not timing: the window is held still (a burst must
    not straddle a minute boundary) and the store's socket timeout is lifted, so that a loaded
    machine cannot make the store look frozen and the limiter fail open (CI saw 180 pass)."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(rate_limit, "clock", lambda: 1_800_000_000.0)
    monkeypatch.setattr(rate_limit, "_SOCKET_TIMEOUT_S", 60.0)
    secret = issue_token(database_url, f"burst-{uuid.uuid4().hex[:6]}", "reader")
    shared = Settings(database_url=database_url, rate_limit_per_minute=60, rate_limit_store_url=redis_url)
    clients = [TestClient(create_app(shared)) for _ in range(2)]
    for c in clients:
        c.__enter__()
    try:
        with ThreadPoolExecutor(24) as pool:
            statuses = list(
                pool.map(
                    lambda i: (
                        clients[i % 2]
                        .get(
                            "/api/v1/studies",
                            params={"limit": 1},
                            headers={"Authorization": f"Bearer {secret}"},
                        )
                        .status_code
                    ),
                    range(240),
                )
            )
    finally:
        for c in clients:
            c.__exit__(None, None, None)
    assert statuses.count(200) == 60 and statuses.count(429) == 180


def test_a_frozen_store_fails_open_for_every_request(database_url: str, redis_url: str) -> None:
    """SIGSTOP on the store: requests go through unlimited (each waited at most the client's
    short socket timeout, then the store is left alone for a few seconds), then counting resumes."""
    from concurrent.futures import ThreadPoolExecutor

    pid = REDIS_PIDS[redis_url]
    secret = issue_token(database_url, f"frozen-{uuid.uuid4().hex[:6]}", "reader")
    settings = Settings(database_url=database_url, rate_limit_per_minute=2, rate_limit_store_url=redis_url)
    with TestClient(create_app(settings)) as client:
        os.kill(pid, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(8) as pool:
                statuses = list(
                    pool.map(
                        lambda _: (
                            client.get(
                                "/api/v1/studies", headers={"Authorization": f"Bearer {secret}"}
                            ).status_code
                        ),
                        range(8),
                    )
                )
        finally:
            os.kill(pid, signal.SIGCONT)
    assert statuses == [200] * 8  # over the limit of 2, but the count could not be kept


@pytest.mark.parametrize("header", [b"X-Odd: a\x00b", b"X-Odd: a\rb"])
def test_a_request_the_http_parser_refuses_is_a_problem_json_400(tmp_path: Path, header: bytes) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        port, log = _free_port(), tmp_path / "serve.log"
        server = _start(url, port, log)
        try:
            _wait_healthy(port, server, log)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                connection.sendall(b"GET /health/live HTTP/1.1\r\nHost: registry\r\n" + header + b"\r\n\r\n")
                answer = connection.recv(65536)
        finally:
            _stop(server)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"] == "/problems/invalid-request"
