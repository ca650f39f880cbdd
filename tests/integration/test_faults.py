"""Database faults: refused, frozen, a statement that runs too long, and a process killed in the
middle of a burst of writes. Each gets its documented answer (503 problem+json with
Retry-After, within the configured client timeouts), the service recovers by itself when the
database comes back, and nothing acknowledged is lost."""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from service.app import create_app
from service.settings import Settings
from tests.databases import fresh_database, issue_token
from tests.faults import FaultyProxy

API = "/api/v1"
FAST = {"db_connect_timeout_s": 1.0, "db_command_timeout_s": 1.5, "db_pool_timeout_s": 1.0}


def _is_outage(response: Any) -> bool:
    return (
        response.status_code == 503
        and response.headers["content-type"].startswith("application/problem+json")
        and response.headers.get("retry-after") == "5"
        and response.json()["type"] == "/problems/database-unavailable"
    )


def _until_ok(client: TestClient[Any], url: str, attempts: int = 40) -> Any:
    """The first 200 within `attempts` tries (a bounded loop, no timing asserted)."""
    response = None
    for _ in range(attempts):
        response = client.get(url)
        if response.status_code == 200:
            return response
        time.sleep(0.25)
    return response


@pytest.fixture
def postgres_behind_proxy(backend: str, tmp_path: Path) -> Iterator[tuple[str, FaultyProxy]]:
    if backend != "postgres":
        pytest.skip("network faults need a database server (Postgres)")
    with fresh_database("postgres", tmp_path) as url:
        real = make_url(url)
        proxy = FaultyProxy(real.host or "127.0.0.1", real.port or 5432)
        try:
            yield url, proxy
        finally:
            proxy.close()


def _client_through(url: str, proxy: FaultyProxy) -> TestClient[Any]:
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    client = TestClient(create_app(Settings(database_url=proxied, rate_limit_per_minute=0, **FAST)))  # type: ignore[arg-type]
    client.headers["Authorization"] = f"Bearer {issue_token(url, 'faults', 'admin')}"
    return client


def test_refused_then_back(
    postgres_behind_proxy: tuple[str, FaultyProxy], caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = postgres_behind_proxy
    with _client_through(url, proxy) as client:
        assert client.get(f"{API}/studies").status_code == 200
        # One record's read goes straight to the driver's connection (service.db.driver_reads).
        study = client.post(f"{API}/studies", json={"title": "before the outage", "design": "other"}).json()
        assert client.get(f"{API}/studies/{study['id']}").status_code == 200
        proxy.set("refuse")
        assert _is_outage(client.get(f"{API}/studies"))
        # The log says which failure it was (D11), by the exception's class and first line.
        assert re.search(r"database error on GET /api/v1/studies: \S+(Error|Exception)", caplog.text)
        assert _is_outage(client.get(f"{API}/studies/{study['id']}"))
        assert _is_outage(client.get("/health"))
        proxy.set("forward")
        assert _until_ok(client, f"{API}/studies").status_code == 200  # no restart needed
        assert _until_ok(client, f"{API}/studies/{study['id']}").status_code == 200


def test_frozen_then_back(postgres_behind_proxy: tuple[str, FaultyProxy]) -> None:
    url, proxy = postgres_behind_proxy
    with _client_through(url, proxy) as client:
        study = client.post(f"{API}/studies", json={"title": "before the freeze", "design": "other"}).json()
        assert client.get(f"{API}/studies/{study['id']}").status_code == 200
        proxy.set("freeze")
        assert _is_outage(client.get(f"{API}/studies"))  # answered, after the command timeout
        assert _is_outage(client.get(f"{API}/studies/{study['id']}"))  # on the driver's connection too
        created = client.post(f"{API}/studies", json={"title": "during the freeze", "design": "other"})
        assert _is_outage(created)
        proxy.set("forward")
        assert _until_ok(client, f"{API}/studies/{study['id']}").status_code == 200
        assert client.get(f"{API}/studies").json()["total"] == 1  # the refused write left nothing


def test_statement_timeout_is_503(backend: str, tmp_path: Path) -> None:
    if backend != "postgres":
        pytest.skip("statement_timeout is a Postgres setting")
    with fresh_database("postgres", tmp_path) as url:
        secret = issue_token(url, "timeouts", "admin")
        app = create_app(Settings(database_url=url, rate_limit_per_minute=0, statement_timeout_ms=300))
        auth = {"Authorization": f"Bearer {secret}"}
        with TestClient(app) as client:
            study = client.post(f"{API}/studies", json={"title": "locked", "design": "other"}, headers=auth)
            assert study.status_code == 201
        held = threading.Event()
        release = threading.Event()

        async def hold_lock() -> None:
            engine = create_async_engine(url)
            async with engine.begin() as connection:
                await connection.execute(text("LOCK TABLE studies IN ACCESS EXCLUSIVE MODE"))
                held.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait)
            await engine.dispose()

        locker = threading.Thread(target=lambda: asyncio.run(hold_lock()))
        locker.start()
        try:
            assert held.wait(10)
            with TestClient(app) as client:
                assert _is_outage(client.get(f"{API}/studies", headers=auth))
                # One record's read, on the driver's connection (service.db.driver_reads): the
                # server cancels it the same way, and it is the same 503.
                assert _is_outage(client.get(f"{API}/studies/{study.json()['id']}", headers=auth))
        finally:
            release.set()
            locker.join(10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(
    url: str, port: int, log: Path, seed: bool = False, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
        "SEED_ON_START": "1" if seed else "0",
        **(env or {}),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    # One client for the whole wait: a client per attempt built an SSL context each time (tens
    # of ms of CPU, taken from the server starting beside it on a two-core machine).
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"server on {port} never became healthy:\n{log.read_text()[-3000:]}")


def test_two_replicas_started_together_on_a_fresh_database_both_come_up(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path, migrate=False) as url:
        ports = [_free_port(), _free_port()]
        logs = [tmp_path / f"replica-{i}.log" for i in range(2)]
        replicas = [_serve(url, port, log, seed=True) for port, log in zip(ports, logs, strict=True)]
        try:
            for port, process, log in zip(ports, replicas, logs, strict=True):
                _wait_healthy(port, process, log)
            secret = issue_token(url, "replicas", "reader")
            totals = {
                httpx.get(
                    f"http://127.0.0.1:{port}{API}/studies",
                    headers={"Authorization": f"Bearer {secret}"},
                    timeout=10,
                ).json()["total"]
                for port in ports
            }
            assert totals == {5}  # seeded once, by whichever replica took the startup lock first
        finally:
            for process in replicas:
                process.terminate()
                process.wait(20)


def test_kill_9_during_a_burst_of_writes_loses_nothing_acknowledged(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        secret = issue_token(url, "burst", "curator")
        headers = {"Authorization": f"Bearer {secret}"}
        port, log = _free_port(), tmp_path / "server.log"
        server = _serve(url, port, log)
        acknowledged: list[str] = []
        try:
            _wait_healthy(port, server, log)

            async def burst() -> None:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:

                    async def writer(i: int) -> None:
                        for j in range(200):
                            try:
                                response = await client.post(
                                    f"{API}/studies",
                                    json={"title": f"w{i}-{j}", "design": "other"},
                                    timeout=10,
                                )
                            except httpx.HTTPError:
                                return  # the server is gone
                            if response.status_code == 201:
                                acknowledged.append(response.json()["id"])
                                if len(acknowledged) == 60:
                                    server.send_signal(signal.SIGKILL)

                    await asyncio.gather(*(writer(i) for i in range(6)))

            asyncio.run(burst())
            server.wait(20)
            assert server.returncode == -signal.SIGKILL and len(acknowledged) >= 60
        finally:
            if server.poll() is None:
                server.kill()
        restarted = _serve(url, port, log)
        try:
            _wait_healthy(port, restarted, log)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
                for study_id in acknowledged:
                    assert client.get(f"{API}/studies/{study_id}").status_code == 200, study_id
        finally:
            restarted.terminate()
            restarted.wait(20)
        verified = subprocess.run(
            [sys.executable, "-m", "service", "audit", "verify"],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=False,
        )
        assert verified.returncode == 0, verified.stderr


def test_80_concurrent_creates_through_two_processes_on_one_database_all_succeed(
    backend: str, tmp_path: Path
) -> None:
    """On SQLite the two processes share one file: writers queue on the write lock (BEGIN
    IMMEDIATE + busy timeout) instead of failing with 503."""
    with fresh_database(backend, tmp_path) as url:
        secret = issue_token(url, "writers", "curator")
        ports = [_free_port(), _free_port()]
        logs = [tmp_path / f"writer-{i}.log" for i in range(2)]
        servers = [_serve(url, port, log) for port, log in zip(ports, logs, strict=True)]
        try:
            for port, process, log in zip(ports, servers, logs, strict=True):
                _wait_healthy(port, process, log)

            async def creates() -> list[int]:
                clients = [
                    httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{port}",
                        headers={"Authorization": f"Bearer {secret}"},
                        timeout=60,
                    )
                    for port in ports
                ]
                try:
                    responses = await asyncio.gather(
                        *(
                            clients[i % 2].post(
                                f"{API}/studies", json={"title": f"concurrent {i}", "design": "other"}
                            )
                            for i in range(80)
                        )
                    )
                    return [r.status_code for r in responses]
                finally:
                    for client in clients:
                        await client.aclose()

            statuses = asyncio.run(creates())
            assert statuses == [201] * 80
            listed = httpx.get(
                f"http://127.0.0.1:{ports[0]}{API}/studies",
                params={"limit": 500},
                headers={"Authorization": f"Bearer {secret}"},
                timeout=10,
            ).json()
            assert sum(1 for s in listed["items"] if s["title"].startswith("concurrent ")) == 80
        finally:
            for process in servers:
                process.terminate()
                process.wait(20)
