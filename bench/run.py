# ruff: noqa: S603, S607 - runs the fixed tools taskset and wrk and this repository's own apps
"""`make bench`: the service against the raw limit (bench/raw_app.py) and against a typical
FastAPI + SQLModel application (bench/peer_app.py) on the same data, the same machine and the
same run, every figure reported as service ÷ raw and service ÷ peer.

Each app runs alone as in production (uvicorn, one worker, pinned to core 0 with taskset); load
comes from wrk pinned to core 1. The analyses' single requests are timed with the three apps
side by side, answering one request at a time in turn, so that the machine's drift falls on
all. Each scenario is warmed up, then measured `--runs` times; the report gives medians with
min–max. Results go to bench/RESULTS.md (and the JSON beside it).

`--quick` (make bench-quick) is a smoke test of the harness at the smallest scale: it checks that
every scenario answers 2xx and that the statement counts per request hold, and asserts no timing.

Scenarios (the issue's targets in brackets):
- get: read one patient [>= 0.6x raw throughput, >= 1.5x the peer's]
- page: a 50-item page of one study's patients filtered by diagnosis, with its total [>= 0.6x
  raw, >= 1.5x the peer]
- create: create an adverse event with an Idempotency-Key [>= 0.8x raw]
- incidence: adverse-event incidence by arm over the large study [<= 1.5x raw GROUP BY time,
  the peer's time >= 1.5x the service's]
- survival: OS by arm [<= 1.5x raw fetch + statistics, the peer's >= 1.5x the service's]; and the
  OS fetch against the five-way UNION the service used before migration 0009 [>= 3x faster]
- heavy: p99 of reading a patient while another client loops on incidence, or on a 200-lane
  swimmer plot, or while 4 clients loop on survival analyses and 2 on imports of 500-patient
  studies (each deleted again) [<= 2x the p99 without]
- plots: memory growth of the service while drawing the KM plot of the large study and a
  200-lane swimmer plot [< 200 MB]; /health answered meanwhile
- growth: p50 of get and page at the smallest and the largest scale [< 2x]
- exports: the large study exported as json, csv and ndjson, streamed; the server's peak memory
  growth [< 200 MB: memory bounded by a batch, not by the study]"""

import argparse
import asyncio
import json
import logging
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dataset import Dataset, prepare, vacuumed  # noqa: E402
from bench.statements import count_statements  # noqa: E402
from tests.databases import issue_token  # noqa: E402

PYTHON = sys.executable
SERVICE_PORT, RAW_PORT, PEER_PORT, LITESTAR_PORT = 8731, 8732, 8733, 8734
EXPORT_PATHS = {"json": "", "csv": "/csv", "ndjson": "/fhir-ndjson", "fhir": "/fhir"}
API = "/api/v1"


@dataclass
class Wrk:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)


# --- processes ---------------------------------------------------------------------------------


@contextmanager
def running(kind: str, url: str, log: Path) -> Iterator[tuple[int, int]]:
    """The service, the raw app, the peer or Litestar alone doing the raw app's read
    (bench/framework_floor.py) on core 0; yields (port, pid)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(SERVICE_PORT),
        "RATE_LIMIT_PER_MINUTE": "0",
        "SEED_ON_START": "0",
        # The figures are of computing each answer: a repeat served from the analysis store
        # (service.caching) would be compared with a raw app that computes every time. Repeats
        # are measured on their own (bench/analyses.py).
        "ANALYSIS_CACHE_MB": os.environ.get("BENCH_ANALYSIS_CACHE_MB", "0"),
    }
    if kind == "service":
        command, port = [PYTHON, "-m", "service", "serve"], SERVICE_PORT
    elif kind == "raw":
        command, port = [PYTHON, str(ROOT / "bench" / "raw_app.py"), url, str(RAW_PORT)], RAW_PORT
    elif kind == "peer":
        command, port = [PYTHON, str(ROOT / "bench" / "peer_app.py"), url, str(PEER_PORT)], PEER_PORT
    else:
        floor = str(ROOT / "bench" / "framework_floor.py")
        command, port = [PYTHON, floor, "--litestar-app", url, str(LITESTAR_PORT)], LITESTAR_PORT
    log.parent.mkdir(parents=True, exist_ok=True)  # bench/.data is not there in a fresh clone on Postgres
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["taskset", "-c", "0", *command], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start; see {log}")
            time.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def wrk(port: int, script: str, seconds: float, connections: int) -> Wrk:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(round(seconds), 1)}s",
        "--latency",
    ]
    output = subprocess.run(
        [*command, "-s", handle.name, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True
    ).stdout
    os.unlink(handle.name)

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        assert match, output
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    assert rps, output
    return Wrk(float(rps.group(1)), latency("50"), latency("99"), int(bad.group(1)) if bad else 0)


# --- wrk scripts -------------------------------------------------------------------------------


def _lua_list(values: list[str]) -> str:
    return "{" + ",".join(f'"{v}"' for v in values) + "}"


def get_script(data: Dataset, token: str) -> str:
    return f"""
local ids = {_lua_list([str(i) for i in data.patient_ids])}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "{API}/patients/" .. ids[(i % #ids) + 1], {{["Authorization"] = "Bearer {token}"}})
end
"""


def page_script(data: Dataset, token: str) -> str:
    return f"""
local i = 0
request = function()
  i = i + 1
  local path = "{API}/patients?study_id={data.study_id}&diagnosis=AML&limit=50&offset=" .. ((i % 20) * 50)
  return wrk.format("GET", path, {{["Authorization"] = "Bearer {token}"}})
end
"""


def create_script(data: Dataset, token: str) -> str:
    prefix = secrets.token_hex(6)
    return f"""
local ids = {_lua_list([str(i) for i in data.patient_ids])}
local i = 0
request = function()
  i = i + 1
  local body = '{{"patient_id":"' .. ids[(i % #ids) + 1] .. '","term":"Nausea","grade":2,"grading_system":"CTCAE_v5","onset_day":1,"resolution_day":3,"outcome":"resolved"}}'
  local headers = {{["Authorization"] = "Bearer {token}", ["Content-Type"] = "application/json",
                   ["Idempotency-Key"] = "{prefix}-" .. i}}
  return wrk.format("POST", "{API}/adverse-events", headers, body)
end
"""


# --- measurements ------------------------------------------------------------------------------


def timed_get(port: int, path: str, token: str, runs: int) -> list[float]:
    return interleaved({"app": port}, path, token, runs)["app"]


def interleaved(ports: dict[str, int], path: str, token: str, runs: int) -> dict[str, list[float]]:
    """`runs` timed GETs of `path` from each app in `ports` (after one warm-up each), in rounds
    that take the apps in turn, each round starting one app later, so that drift in the machine
    falls on all alike."""
    headers = {"Authorization": f"Bearer {token}"}
    clients = {
        kind: httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600)
        for kind, port in ports.items()
    }
    kinds = list(ports)
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        for client in clients.values():
            assert client.get(path).status_code == 200  # warm-up
        for round_ in range(runs):
            for kind in kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]:
                started = time.perf_counter()
                response = clients[kind].get(path)
                times[kind].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:300]
    finally:
        for client in clients.values():
            client.close()
    return times


def rss_kib(pid: int, field_name: str) -> int:
    """VmRSS or VmHWM (peak) of `pid` plus that of its descendants (the plot worker process)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            total += int(line.split()[1])
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_kib(int(child), field_name)
    return total


def reset_peaks(pid: int) -> None:
    """Start `pid`'s and its descendants' peak memory (VmHWM) afresh from what each holds now
    (Linux: "5" to clear_refs), so that a peak read afterwards is the peak of what follows and
    not one reached earlier: a statistics worker that handled a large survival or import under
    the mixed load kept its peak, and it was counted as the plots' growth."""
    with suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            reset_peaks(int(child))


@contextmanager
def looping(port: int, path: str, token: str) -> Iterator[list[int]]:
    """Another client requesting `path` back to back while the block runs; yields its count."""
    done, count = threading.Event(), [0]

    def loop() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
            while not done.is_set():
                assert client.get(f"http://127.0.0.1:{port}{path}").status_code == 200
                count[0] += 1

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    time.sleep(0.5)
    try:
        yield count
    finally:
        done.set()
        worker.join(timeout=600)


@contextmanager
def mixed_load(
    port: int, data: Dataset, token: str, analyses: int = 4, imports: int = 2
) -> Iterator[list[int]]:
    """`analyses` clients looping on survival by arm (each its own parameters, so that no answer
    could be reused) and `imports` clients importing a 500-patient study and deleting it again,
    while the block runs; yields [analyses done, imports done]."""
    from tests.integration.test_bulk_import import document

    done, count = threading.Event(), [0, 0]
    base, headers = f"http://127.0.0.1:{port}{API}", {"Authorization": f"Bearer {token}"}

    def analyse(client_number: int) -> None:
        with httpx.Client(headers=headers, timeout=600) as client:
            while not done.is_set():
                level = 0.9 + client_number / 100
                path = f"{base}/studies/{data.study_id}/survival?group_by=arm&conf_level={level:.2f}"
                assert client.get(path).status_code == 200
                count[0] += 1

    def import_and_delete() -> None:
        with httpx.Client(headers=headers, timeout=600) as client:
            while not done.is_set():
                body = document(patients=500, records=2, source=f"bench-mixed-{secrets.token_hex(6)}.txt")
                response = client.post(f"{base}/studies/import", json=body)
                if response.status_code == 409:  # both added the same new agent at once: retry
                    continue
                assert response.status_code == 201, response.text[:300]
                study = f"{base}/studies/{response.json()['study_id']}"
                etag = client.get(study).headers["etag"]
                gone = client.delete(
                    f"{study}?cascade=true", headers={"If-Match": etag, "X-Change-Reason": "benchmark load"}
                )
                assert gone.status_code == 204, gone.text[:300]
                count[1] += 1

    workers = [threading.Thread(target=analyse, args=(i,), daemon=True) for i in range(analyses)]
    workers += [threading.Thread(target=import_and_delete, daemon=True) for _ in range(imports)]
    for worker in workers:
        worker.start()
    time.sleep(1)
    try:
        yield count
    finally:
        done.set()
        for worker in workers:
            worker.join(timeout=600)


def spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def check(report: Report, label: str, ok: bool, detail: str) -> None:
    report.say(f"  {'met   ' if ok else 'MISSED'} {label}: {detail}")
    if not ok:
        report.failures.append(f"{label}: {detail}")


# --- the run -----------------------------------------------------------------------------------


def throughput(
    report: Report, backend: str, data: Dataset, token: str, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    scripts = {"get": get_script, "page": page_script, "create": create_script}
    targets = {"get": 0.6, "page": 0.6, "create": 0.8}
    peer_targets = {"get": 1.5, "page": 1.5}  # reads: the service against a typical application
    kinds = ("service", "raw", "peer")
    results: dict[str, dict[str, list[Wrk]]] = {name: {kind: [] for kind in kinds} for name in scripts}
    for run in range(args.runs):
        # Rotate which app goes first, so that drift on the machine does not favour one.
        for kind in kinds[run % 3 :] + kinds[: run % 3]:
            if backend == "postgres":  # each app on the same clean tables (see vacuumed)
                asyncio.run(vacuumed(data.url))
            with running(kind, data.url, log) as (port, _):
                for name, script in scripts.items():
                    # A new script per wrk run: each has its own Idempotency-Key prefix.
                    if run == 0:
                        wrk(port, script(data, token), args.warmup, args.connections)
                    results[name][kind].append(
                        wrk(port, script(data, token), args.duration, args.connections)
                    )
    out: dict[str, Any] = {}
    for name in scripts:
        service, raw, peer = (results[name][kind] for kind in kinds)
        ratios = [s.rps / r.rps for s, r in zip(service, raw, strict=True)]
        over_peer = [s.rps / p.rps for s, p in zip(service, peer, strict=True)]
        bad = sum(x.non_2xx for x in service + raw + peer)
        report.say(
            f"  {name:7} service {spread([s.rps for s in service], 0)} req/s, raw {spread([r.rps for r in raw], 0)} req/s, "
            f"peer {spread([p.rps for p in peer], 0)} req/s; p50 {statistics.median([s.p50_ms for s in service]):.2f} ms "
            f"vs {statistics.median([r.p50_ms for r in raw]):.2f} ms raw, {statistics.median([p.p50_ms for p in peer]):.2f} ms peer; "
            f"non-2xx {bad}"
        )
        if bad:
            report.failures.append(f"{backend} {name}: {bad} non-2xx responses")
        if not args.quick:
            check(
                report,
                f"{backend} {name} throughput",
                statistics.median(ratios) >= targets[name],
                f"service ÷ raw = {spread(ratios, 2)} (target >= {targets[name]})",
            )
            if name in peer_targets:
                check(
                    report,
                    f"{backend} {name} throughput against the peer",
                    statistics.median(over_peer) >= peer_targets[name],
                    f"service ÷ peer = {spread(over_peer, 2)} (target >= {peer_targets[name]})",
                )
        out[name] = {
            "service_rps": [s.rps for s in service],
            "raw_rps": [r.rps for r in raw],
            "peer_rps": [p.rps for p in peer],
            "service_p50_ms": [s.p50_ms for s in service],
            "service_p99_ms": [s.p99_ms for s in service],
            "ratio": ratios,
            "ratio_peer": over_peer,
        }
    return out


def analytics(
    report: Report, backend: str, data: Dataset, token: str, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    paths = {
        "incidence": f"{API}/studies/{data.study_id}/adverse-event-incidence?group_by=arm",
        "survival": f"{API}/studies/{data.study_id}/survival?group_by=arm&endpoint=OS",
    }
    # The three apps run side by side, each answering in turn (service, raw, peer; then raw,
    # peer, service; …): one app measured after the other saw the machine drift between them
    # (the raw app's survival 134 ms in one full run, 176 ms in the next minutes later, the
    # service's steady), and that drift went into the ratio. Requests are one at a time, so the
    # apps sharing core 0 do not compete.
    with (
        running("service", data.url, log) as (service_port, _),
        running("raw", data.url, log) as (raw_port, _),
        running("peer", data.url, log) as (peer_port, _),
    ):
        ports = {"service": service_port, "raw": raw_port, "peer": peer_port}
        times = {name: interleaved(ports, path, token, args.runs + 2) for name, path in paths.items()}
    out: dict[str, Any] = {}
    for name in paths:
        service, raw, peer = (statistics.median(times[name][kind]) for kind in ("service", "raw", "peer"))
        report.say(
            f"  {name:9} service {spread([t * 1000 for t in times[name]['service']], 0)} ms, "
            f"raw {spread([t * 1000 for t in times[name]['raw']], 0)} ms, "
            f"peer {spread([t * 1000 for t in times[name]['peer']], 0)} ms"
        )
        if not args.quick:
            check(
                report,
                f"{backend} {name} time",
                service / raw <= 1.5,
                f"service ÷ raw = {service / raw:.2f} (target <= 1.5)",
            )
            check(
                report,
                f"{backend} {name} against the peer",
                peer / service >= 1.5,
                f"peer's time ÷ service's = {peer / service:.2f} (target >= 1.5)",
            )
        out[name] = {
            "service_s": times[name]["service"],
            "raw_s": times[name]["raw"],
            "peer_s": times[name]["peer"],
        }
    fetch = asyncio.run(union_comparison(data))
    report.say(
        f"  survival fetch: five-way UNION {fetch['union_ms']:.0f} ms, maintained column {fetch['column_ms']:.0f} ms"
    )
    if not args.quick:
        ratio = fetch["union_ms"] / fetch["column_ms"]
        check(
            report,
            f"{backend} survival fetch",
            ratio >= 3,
            f"{ratio:.1f}x faster than the UNION (target >= 3x)",
        )
    out["survival_fetch"] = fetch
    # Each endpoint's per-patient rows, against the raw OS fetch of the same run: the two plans
    # that went wrong at scale so far took minutes where 2-5x that fetch was usual.
    limit_s = max(60.0, 40 * fetch["column_ms"] / 1000)
    rows = asyncio.run(endpoint_rows(data, limit_s))
    report.say(
        "  per-patient rows: "
        + ", ".join(f"{name} {'stopped' if s is None else f'{s * 1000:.0f} ms'}" for name, s in rows.items())
    )
    if not args.quick:
        for name, s in rows.items():
            ratio = None if s is None else s * 1000 / fetch["column_ms"]
            check(
                report,
                f"{backend} {name} per-patient rows",
                ratio is not None and ratio <= 20,
                f"stopped after {limit_s:.0f} s"
                if ratio is None
                else f"{ratio:.1f}x the raw OS fetch (target <= 20x)",
            )
    out["endpoint_rows_s"] = rows
    return out


async def endpoint_rows(data: Dataset, limit_s: float) -> dict[str, float | None]:
    from bench.statements import time_endpoint_rows

    return await time_endpoint_rows(data.url, data.study_id, limit_s)


async def union_comparison(data: Dataset) -> dict[str, float]:
    from bench.statements import time_survival_fetches

    return await time_survival_fetches(data.url, data.study_id)


def heavy(
    report: Report, backend: str, data: Dataset, token: str, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    loops = {
        "incidence": f"{API}/studies/{data.study_id}/adverse-event-incidence?group_by=arm",
        "swimmer plot (200 lanes)": f"{API}/studies/{data.study_id}/swimmer-plot?limit=200",
    }
    with running("service", data.url, log) as (port, pid):
        script = get_script(data, token)
        wrk(port, script, args.warmup, 4)
        alone = [wrk(port, script, args.duration, 4).p99_ms for _ in range(args.runs)]
        for name, path in loops.items():
            with looping(port, path, token) as count:
                loaded = [wrk(port, script, args.duration, 4).p99_ms for _ in range(args.runs)]
            ratio = statistics.median(loaded) / statistics.median(alone)
            report.say(
                f"  read p99 alone {spread(alone, 2)} ms; with {name} looping ({count[0]} done) {spread(loaded, 2)} ms"
            )
            if not args.quick:
                check(
                    report,
                    f"{backend} read p99 with {name} in flight",
                    ratio <= 2,
                    f"{ratio:.2f}x (target <= 2x)",
                )
            out[name] = {"alone_p99_ms": alone, "loaded_p99_ms": loaded}
        with mixed_load(port, data, token) as count:
            loaded = [wrk(port, script, args.duration, 4).p99_ms for _ in range(args.runs)]
        ratio = statistics.median(loaded) / statistics.median(alone)
        report.say(
            f"  read p99 alone {spread(alone, 2)} ms; with 4 survival clients and 2 import clients "
            f"({count[0]} analyses, {count[1]} imports done) {spread(loaded, 2)} ms"
        )
        if not args.quick:
            check(
                report,
                f"{backend} read p99 with analyses and imports",
                ratio <= 2,
                f"{ratio:.2f}x (target <= 2x)",
            )
        out["survival and imports"] = {"alone_p99_ms": alone, "loaded_p99_ms": loaded, "done": count}
        # Plots: memory growth while drawing, and /health answered meanwhile.
        reset_peaks(pid)
        before = rss_kib(pid, "VmRSS")  # the plot worker already started by the loops above
        health = [0]
        done = threading.Event()

        def probe() -> None:
            while not done.is_set():
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).status_code == 200:
                    health[0] += 1
                time.sleep(0.05)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        started = time.perf_counter()
        plot_times = {}
        for name, path in {
            "KM plot": f"{API}/studies/{data.study_id}/survival/plot.png?group_by=arm",
            "swimmer plot": f"{API}/studies/{data.study_id}/swimmer-plot.png?limit=200",
        }.items():
            plot_times[name] = timed_get(port, path, token, 2)
        done.set()
        prober.join()
        elapsed = time.perf_counter() - started
        growth_mb = (rss_kib(pid, "VmHWM") - before) / 1024
        report.say(
            f"  plots: KM {spread([t * 1000 for t in plot_times['KM plot']], 0)} ms, swimmer {spread([t * 1000 for t in plot_times['swimmer plot']], 0)} ms; "
            f"peak memory growth (server and plot worker) {growth_mb:.0f} MB; /health answered {health[0]} times in {elapsed:.1f} s"
        )
        if not args.quick:
            check(report, f"{backend} plot memory", growth_mb < 200, f"{growth_mb:.0f} MB (target < 200 MB)")
        out["plots"] = {"growth_mb": growth_mb, "health_answers": health[0], "seconds": elapsed}
    return out


def exports(
    report: Report, backend: str, data: Dataset, token: str, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    """Each export format of the large study, streamed to /dev/null: time, size, and the growth
    of the server's peak memory (VmHWM) over what it held before the first export."""
    out: dict[str, Any] = {}
    formats = ("json", "csv", "ndjson") if not args.quick else ("json", "csv", "ndjson", "fhir")
    with running("service", data.url, log) as (port, pid):
        httpx.get(
            f"http://127.0.0.1:{port}{API}/studies/{data.study_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        reset_peaks(pid)
        before = rss_kib(pid, "VmRSS")
        for name in formats:
            started, size = time.perf_counter(), 0
            with httpx.stream(
                "GET",
                # each format is an operation of its own (`format=` answers 307 to it)
                f"http://127.0.0.1:{port}{API}/studies/{data.study_id}/export{EXPORT_PATHS[name]}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=1800,
            ) as response:
                response.raise_for_status()
                for chunk in response.iter_raw():
                    size += len(chunk)
            seconds = time.perf_counter() - started
            growth_mb = (rss_kib(pid, "VmHWM") - before) / 1024
            report.say(
                f"  export {name}: {size / 1e6:.1f} MB in {seconds:.1f} s; server peak memory growth so far {growth_mb:.0f} MB"
            )
            out[name] = {"bytes": size, "seconds": seconds, "peak_growth_mb": growth_mb}
        if not args.quick:
            worst = max(v["peak_growth_mb"] for v in out.values())
            check(report, f"{backend} export memory", worst < 200, f"{worst:.0f} MB (target < 200 MB)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smallest scale, short runs, no timing targets")
    parser.add_argument("--scales", default="1000,10000,100000")
    parser.add_argument(
        "--backends", default="sqlite,postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", default="throughput,analytics,heavy,exports", help="sections to run")
    args = parser.parse_args()
    if args.quick:
        args.scales, args.duration, args.warmup, args.runs = "1000", 1.0, 1.0, 1
    scales = [int(s) for s in args.scales.split(",")]
    logging.getLogger("httpx").setLevel(logging.WARNING)
    report = Report()
    log = ROOT / "bench" / ".data" / "servers.log"
    log.parent.mkdir(exist_ok=True)
    report.say(
        f"# bench {'--quick ' if args.quick else ''}{time.strftime('%Y-%m-%d %H:%M')} — scales {scales}, "
        f"{args.runs} runs x {args.duration:g} s, wrk -t1 -c{args.connections} on core 1, apps on core 0"
    )
    for backend in args.backends.split(","):
        report.data[backend] = {}
        for scale in scales:
            data = asyncio.run(prepare(backend, scale, os.environ.get("TEST_POSTGRES_URL")))
            token = issue_token(data.url, f"bench-{secrets.token_hex(4)}", "admin")
            report.say(f"\n## {backend}, {scale:,} patients")
            counts = asyncio.run(count_statements(data, token))
            report.say(
                "  statements per request (service; raw by construction): "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
            )
            for name, (limit, value) in {
                "read": (3, counts["read"]),
                "page": (3, counts["page"]),
                "create": (counts["raw create"] + 2, counts["create"]),
            }.items():
                check(
                    report, f"{backend} statements per {name}", value <= limit, f"{value} (target <= {limit})"
                )
            entry: dict[str, Any] = {"statements": counts}
            sections = args.only.split(",")
            if "throughput" in sections:
                entry["throughput"] = throughput(report, backend, data, token, args, log)
            if scale == max(scales) or args.quick:
                if "analytics" in sections:
                    entry["analytics"] = analytics(report, backend, data, token, args, log)
                if "heavy" in sections:
                    entry["heavy"] = heavy(report, backend, data, token, args, log)
                if "exports" in sections:
                    entry["exports"] = exports(report, backend, data, token, args, log)
            report.data[backend][scale] = entry
        if len(scales) > 1 and not args.quick and "throughput" in args.only:
            small, large = report.data[backend][min(scales)], report.data[backend][max(scales)]
            for name in ("get", "page"):
                a = statistics.median(small["throughput"][name]["service_p50_ms"])
                b = statistics.median(large["throughput"][name]["service_p50_ms"])
                check(
                    report,
                    f"{backend} {name} p50 growth {min(scales):,} -> {max(scales):,}",
                    b / a < 2,
                    f"{a:.2f} -> {b:.2f} ms = {b / a:.2f}x (target < 2x)",
                )
    if report.failures:
        report.say("\nMissed or failed:\n" + "\n".join(f"- {f}" for f in report.failures))
    if not args.quick and args.only == parser.get_default("only"):
        preamble = [
            "# Benchmark results",
            "",
            f"Written by `{' '.join(['python', 'bench/run.py', *sys.argv[1:]])}` (what `make bench` runs; Postgres",
            "included when TEST_POSTGRES_URL is set) on this 2-core machine. Every ratio is service ÷ raw",
            "limit (bench/raw_app.py) measured in the same run; medians over the runs with min–max.",
            "What each scenario does and its target: the docstring of bench/run.py.",
            "",
            "```",
        ]
        (ROOT / "bench" / "RESULTS.md").write_text("\n".join([*preamble, *report.lines, "```"]) + "\n")
        (ROOT / "bench" / "results.json").write_text(json.dumps(report.data, indent=1) + "\n")
    # The quick run fails only on what it checks: answers and statement counts.
    broken = [f for f in report.failures if "non-2xx" in f or "statements" in f]
    return 1 if (args.quick and broken) else 0


if __name__ == "__main__":
    raise SystemExit(main())
