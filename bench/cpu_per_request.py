"""CPU per request of the service's app driven in-process through ASGI (no server, no network,
no load generator sharing the core): the figure a change to the request path moves, measured with
the process's CPU clock, so that a loaded machine changes it less than it changes throughput.

Run: python bench/cpu_per_request.py {get,page,create} [--backend sqlite|postgres] [--scale 10000]
     [--requests 3000] [--profile FILE]   (cProfile on the CPU clock; then pstats FILE)

The app is built as the server builds it (startup objects frozen for the collector), on the
benchmark's dataset (bench/dataset.py); 200 requests warm it up first. Creates write adverse
events with an Idempotency-Key each, as `make bench`'s create scenario does."""

import argparse
import asyncio
import cProfile
import gc
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


async def measure(args: argparse.Namespace) -> None:
    from dataset import prepare

    from service.app import create_app
    from service.settings import Settings
    from tests.databases import _issue

    data = await prepare(args.backend, args.scale, os.environ.get("TEST_POSTGRES_URL"))
    os.environ.update(
        DATABASE_URL=data.url, RATE_LIMIT_PER_MINUTE="0", ANALYSIS_CACHE_MB="0", LOG_LEVEL="WARNING"
    )
    token = await _issue(data.url, f"cpu-{secrets.token_hex(4)}", "admin", None, None, False, None)
    app = create_app(Settings.from_env())
    auth = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"bench")]
    ids = [str(i) for i in data.patient_ids]
    statuses: dict[int, int] = {}

    def request(i: int) -> tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes]:
        if args.scenario == "get":
            return "GET", f"/api/v1/patients/{ids[i % len(ids)]}", b"", auth, b""
        if args.scenario == "page":
            query = f"study_id={data.study_id}&diagnosis=AML&limit=50&offset={(i % 20) * 50}"
            return "GET", "/api/v1/patients", query.encode(), auth, b""
        body = json.dumps(
            {
                "patient_id": ids[i % len(ids)],
                "term": "Nausea",
                "grade": 2,
                "grading_system": "CTCAE_v5",
                "onset_day": 1,
                "resolution_day": 3,
                "outcome": "resolved",
            }
        ).encode()
        headers = [
            *auth,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"idempotency-key", f"cpu-{secrets.token_hex(6)}-{i}".encode()),
        ]
        return "POST", "/api/v1/adverse-events", b"", headers, body

    async def one(i: int) -> None:
        method, path, query, headers, body = request(i)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
        }
        sent = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not sent.is_set():
                sent.set()
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # never: the app reads the body once
            return {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async with app.lifespan():
        for i in range(200):
            await one(i)
        gc.collect()
        gc.freeze()  # as the server does once its app is built (service.server)
        statuses.clear()
        profile = cProfile.Profile(time.process_time) if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        for i in range(args.requests):
            await one(10_000 + i)
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{args.backend}, {args.scale:,} patients, {args.scenario}: CPU per request "
        f"{1000 * cpu / args.requests:.3f} ms, wall {1000 * wall / args.requests:.3f} ms; statuses {statuses}"
    )
    if profile:
        profile.dump_stats(args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["get", "page", "create"])
    parser.add_argument("--backend", default="postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite")
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--profile", help="write a cProfile (CPU clock) of the measured requests here")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
