"""What Litestar alone costs on the read-one-patient request, against the raw limit: CPU per
request of three apps driven in-process through ASGI (as bench/cpu_per_request.py drives the
service), on the benchmark's dataset:

- raw: bench/raw_app.py's app (the raw limit of `make bench`);
- litestar: a Litestar app with one route whose handler does exactly the raw app's work (the same
  token query and patient query through the same driver code, the same msgspec encoding of the
  same dict) and returns the bytes: no middleware, guard, dependency, ORM or validation of ours;
- service: the service's app as the server builds it.

The litestar line is the floor of any Litestar service doing this request: the framework's own
routing, request and response objects. Its ratio to raw bounds what `make bench`'s service ÷ raw
can reach (the HTTP server's parsing, the same for every app, narrows each ratio towards 1: it
is reported from the served throughput in `make bench`, not here).

`--served` measures the same three apps as `make bench` does (uvicorn, pinned to core 0; wrk with
16 connections on core 1), each's CPU per request read from /proc while wrk runs.

Run: python bench/framework_floor.py [--backend sqlite|postgres] [--scale 10000] [--requests 3000]
     [--served [--runs 2]]
     python bench/framework_floor.py --litestar-app DATABASE_URL PORT   (the floor app, served)"""

import argparse
import asyncio
import gc
import os
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def litestar_on(raw: Any) -> Any:
    """A Litestar app answering GET /api/v1/patients/{id} with the raw app's own work."""
    from litestar import Litestar, Request, Response, get

    @get("/api/v1/patients/{id:uuid}")
    async def read_patient(request: Request[Any, Any, Any], id: uuid.UUID) -> Response[bytes]:
        headers = {k.encode(): v.encode() for k, v in request.headers.items()}
        status, body, _ = await raw.db.run(lambda c: raw.get_patient(c, headers, id))
        return Response(body, status_code=status, media_type="application/json")

    @get("/health")
    async def health() -> dict[str, str]:  # what bench/run.py's `running` waits for
        return {"status": "ok"}

    async def open_database() -> None:
        await raw.db.open()

    return Litestar([read_patient, health], on_startup=[open_database], openapi_config=None)


async def cpu_per_request(
    app: Any, paths: list[str], headers: list[tuple[bytes, bytes]], n: int
) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}

    async def one(path: str) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    for i in range(200):
        await one(paths[i % len(paths)])
    gc.collect()
    gc.freeze()
    statuses.clear()
    cpu = time.process_time()
    for i in range(n):
        await one(paths[(1000 + i) % len(paths)])
    return 1000 * (time.process_time() - cpu) / n, statuses


async def lifespan(app: Any) -> Any:
    """Start an ASGI app's lifespan and return the task that ends it."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()
    await queue.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send))
    await started.wait()
    return queue, task


async def measure(args: argparse.Namespace) -> None:
    from dataset import prepare
    from raw_app import RawApp

    from service.app import create_app
    from service.settings import Settings
    from tests.databases import _issue

    data = await prepare(args.backend, args.scale, os.environ.get("TEST_POSTGRES_URL"))
    os.environ.update(
        DATABASE_URL=data.url, RATE_LIMIT_PER_MINUTE="0", ANALYSIS_CACHE_MB="0", LOG_LEVEL="WARNING"
    )
    token = await _issue(data.url, f"floor-{secrets.token_hex(4)}", "admin", None, None, False, None)
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"bench")]
    paths = [f"/api/v1/patients/{i}" for i in data.patient_ids]
    raw, under_litestar = RawApp(data.url), RawApp(data.url)
    apps = {"raw": raw, "litestar": litestar_on(under_litestar), "service": create_app(Settings.from_env())}
    figures = {}
    for name, app in apps.items():
        queue, task = await lifespan(app)
        figures[name], statuses = await cpu_per_request(app, paths, headers, args.requests)
        await queue.put({"type": "lifespan.shutdown"})
        await task
        gc.unfreeze()
        print(f"{args.backend}, {args.scale:,} patients, read one patient, {name}: CPU per request "
              f"{figures[name]:.3f} ms; statuses {statuses}")  # fmt: skip
    for database in (raw.db, under_litestar.db):  # the raw app leaves its connections to the process's end
        if database.pool is not None:
            await database.pool.close()
        while not database.sqlite.empty():
            await database.sqlite.get_nowait().close()
    print(
        f"raw ÷ litestar {figures['raw'] / figures['litestar']:.2f}, "
        f"raw ÷ service {figures['raw'] / figures['service']:.2f} (in-process: no HTTP server)"
    )


def served(args: argparse.Namespace) -> None:
    from dataset import prepare
    from run import get_script, running, wrk

    from tests.databases import issue_token

    data = asyncio.run(prepare(args.backend, args.scale, os.environ.get("TEST_POSTGRES_URL")))
    token = issue_token(data.url, f"floor-{secrets.token_hex(4)}", "admin")
    script, log = get_script(data, token), ROOT / "bench" / ".data" / "framework_floor.log"
    for _ in range(args.runs):
        for name in ("raw", "litestar", "service"):
            with running(name, data.url, log) as (port, pid):
                wrk(port, script, 2, 16)
                before = _cpu_seconds(pid)
                result = wrk(port, script, 5, 16)
                cpu = _cpu_seconds(pid) - before
            print(
                f"{args.backend}, {args.scale:,} patients, read one patient served, {name}: {result.rps:.0f} req/s, "
                f"server CPU per request {1000 * cpu / (result.rps * 5):.3f} ms, non-2xx {result.non_2xx}",
                flush=True,
            )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite")
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--served", action="store_true")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--litestar-app", nargs=2, metavar=("DATABASE_URL", "PORT"))
    args = parser.parse_args()
    if args.litestar_app:
        import uvicorn
        from raw_app import RawApp

        url, port = args.litestar_app
        uvicorn.run(
            litestar_on(RawApp(url)), host="127.0.0.1", port=int(port), log_level="warning", access_log=False
        )
    elif args.served:
        served(args)
    else:
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
