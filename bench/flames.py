# ruff: noqa: S603 - runs the fixed tools py-spy and wrk against this repository's own service
"""Flame graphs of the service under the benchmark's load: where each request's CPU goes.

    python bench/flames.py [--scale 10000] [--backends postgres] [--seconds 10]

For each scenario the service runs as in `make bench` (one process on core 0), a client loads it
from core 1 (wrk for reads and creates, a loop of requests for the analyses), and py-spy samples
the server process (its threads, not the statistics workers) into bench/flames/<backend>-<scenario>.svg.
Open an SVG in a browser: the widest frames are where the time goes. Stacks of coroutines run
inside SQLAlchemy's greenlets start at the greenlet, not at the request: read them from there."""

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dataset import prepare  # noqa: E402
from bench.run import API, create_script, get_script, looping, page_script, running, wrk  # noqa: E402
from tests.databases import issue_token  # noqa: E402

PY_SPY = Path(sys.executable).with_name("py-spy")


def record(pid: int, out: Path, seconds: float) -> None:
    subprocess.run(
        [
            *(str(PY_SPY), "record", "-p", str(pid), "-d", str(round(seconds)), "-r", "200"),
            *("--nonblocking", "--function", "--format", "flamegraph", "-o", str(out)),
        ],
        check=True,
        capture_output=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--backends", default="postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    folder = ROOT / "bench" / "flames"
    folder.mkdir(exist_ok=True)
    log = ROOT / "bench" / ".data" / "flames.log"
    for backend in args.backends.split(","):
        data = asyncio.run(prepare(backend, args.scale, os.environ.get("TEST_POSTGRES_URL")))
        token = issue_token(data.url, f"flames-{secrets.token_hex(4)}", "admin")
        analyses = {
            "survival": f"{API}/studies/{data.study_id}/survival?group_by=arm&endpoint=OS",
            "incidence": f"{API}/studies/{data.study_id}/adverse-event-incidence?group_by=arm",
        }
        with running("service", data.url, log) as (port, pid):
            for name, script in {"get": get_script, "page": page_script, "create": create_script}.items():
                wrk(port, script(data, token), 2, 16)  # warm-up
                load = threading.Thread(target=wrk, args=(port, script(data, token), args.seconds + 2, 16))
                load.start()
                time.sleep(1)
                out = folder / f"{backend}-{name}.svg"
                record(pid, out, args.seconds)
                load.join()
                print(f"{out.relative_to(ROOT)}", flush=True)
            for name, path in analyses.items():
                with looping(port, path, token):
                    out = folder / f"{backend}-{name}.svg"
                    record(pid, out, args.seconds)
                print(f"{out.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
