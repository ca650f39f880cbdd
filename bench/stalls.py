"""Where the event loop stalls under the mixed load: the service runs with a heartbeat task (every
millisecond) and a sampler thread; while the heartbeat is more than 8 ms late, the sampler takes
the main thread's stack each millisecond. Then: how many stalls, how long in all, the longest,
and for each of the longest the stacks sampled in it. A read load (wrk, 4 connections) runs beside
`bench/run.py`'s mixed load (4 clients on survival, 2 importing and deleting 500-patient studies).

Run: python bench/stalls.py [--backend sqlite|postgres] [--scale 10000] [--seconds 20]
The sampler takes the interpreter lock to read a stack, so it slows the server a little; its
figures are for finding what holds the loop, the benchmark's (bench/run.py) for how much.

`python bench/stalls.py --serve` is the instrumented server itself (what the above starts)."""

import argparse
import asyncio
import collections
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LATE = 0.008  # a heartbeat this late is a stall
PORT = 8741


class Sampler:
    def __init__(self) -> None:
        self.beat = time.monotonic()
        self.on = False
        self.stalls: list[tuple[float, list[tuple[str, int]]]] = []

    def run(self) -> None:
        main = threading.main_thread().ident
        start, stacks, stalled = 0.0, collections.Counter[str](), False
        while True:
            time.sleep(0.001)
            if not self.on:
                continue
            if time.monotonic() - self.beat > LATE:
                if not stalled:
                    stalled, start, stacks = True, self.beat, collections.Counter()
                frame = sys._current_frames().get(main)
                if frame is not None:
                    summary = traceback.extract_stack(frame)[-22:]
                    stacks[
                        " <- ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in reversed(summary))
                    ] += 1
            elif stalled:
                stalled = False
                self.stalls.append((time.monotonic() - start, stacks.most_common(2)))

    def report(self, path: Path) -> None:
        stalls = sorted(self.stalls, key=lambda s: s[0])
        lines = [
            f"stalls over {LATE * 1000:.0f} ms: {len(stalls)}, {sum(s[0] for s in stalls) * 1000:.0f} ms in all; "
            f"longest (ms): {[round(s[0] * 1000) for s in stalls[-10:]]}"
        ]
        for length, stacks in reversed(stalls[-8:]):
            lines.append(f"== {length * 1000:.0f} ms")
            lines += [f"   {n}x {stack}" for stack, n in stacks]
        path.write_text("\n".join(lines) + "\n")


def serve() -> None:
    """The service (as `serve` builds it) with the heartbeat and the sampler; SIGUSR1 starts
    sampling, SIGTERM writes the report to STALLS_OUT and exits."""
    import atexit

    import uvicorn

    sampler = Sampler()
    threading.Thread(target=sampler.run, daemon=True).start()
    atexit.register(lambda: sampler.report(Path(os.environ["STALLS_OUT"])))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGUSR1, lambda *_: setattr(sampler, "on", True))

    def app() -> Any:
        from service.server import app_from_environment

        built = app_from_environment()

        async def heartbeat() -> None:
            while True:
                sampler.beat = time.monotonic()
                await asyncio.sleep(0.001)

        async def start() -> None:
            asyncio.get_running_loop().create_task(heartbeat())

        built.on_startup.append(start)
        return built

    uvicorn.run(app, factory=True, host="127.0.0.1", port=PORT, log_config=None, access_log=False)


def main() -> None:
    import httpx
    import run as bench
    from dataset import prepare

    from tests.databases import issue_token

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite")
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    data = asyncio.run(prepare(args.backend, args.scale, os.environ.get("TEST_POSTGRES_URL")))
    token = issue_token(data.url, f"stalls-{secrets.token_hex(4)}", "admin")
    out = ROOT / "bench" / ".data" / "stalls.txt"
    out.parent.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": data.url,
        "RATE_LIMIT_PER_MINUTE": "0",
        "SEED_ON_START": "0",
        "ANALYSIS_CACHE_MB": "0",
        "LOG_LEVEL": "WARNING",
        "STALLS_OUT": str(out),
    }
    command = ["taskset", "-c", "0", sys.executable, __file__, "--serve"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)  # noqa: S603 - our own server, fixed arguments
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        reads = bench.get_script(data, token)
        bench.wrk(PORT, reads, 2, 4)
        alone = bench.wrk(PORT, reads, 5, 4)
        server.send_signal(signal.SIGUSR1)
        with bench.mixed_load(PORT, data, token) as done:
            loaded = bench.wrk(PORT, reads, args.seconds, 4)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    print(
        f"{args.backend}, {args.scale:,} patients: read p99 alone {alone.p99_ms:.1f} ms, under the mixed load "
        f"{loaded.p99_ms:.1f} ms ({done[0]} analyses, {done[1]} imports done in {args.seconds:g} s)"
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
