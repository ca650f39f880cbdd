"""The analyses at scale: how long each takes on the benchmark's large study, and how much it slows
other clients while it runs (a patient read, back to back, alone and with the analysis looping).

    python bench/analyses.py [--scale 100000] [--backends sqlite,postgres] [--runs 3] [--only transplant,response]

The service runs on core 0 (as `make bench`); the analysis loop and the reader share core 1.
Figures are printed and written to bench/analyses.json; nothing here is asserted: a loaded
machine changes the times, not the answers."""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dataset import prepare
from bench.run import API, running, timed_get
from tests.databases import issue_token

ROOT = Path(__file__).resolve().parents[1]


def paths(study_id: Any) -> dict[str, str]:
    base = f"{API}/studies/{study_id}"
    return {
        "survival by arm (baseline)": f"{base}/survival?group_by=arm",
        "survival by risk group": f"{base}/survival?group_by=risk_group",
        "survival by age band": f"{base}/survival?group_by=age&age_cuts=18,40,60",
        "survival by MRD at landmark": f"{base}/survival?group_by=mrd_at_landmark&landmark_day=90",
        "transplant (time-varying Cox, Mantel–Byar, Simon–Makuch)": f"{base}/transplant?covariates=age_years",
        "GVHD incidence from transplant": f"{base}/transplant/cumulative-incidence?group_by=arm",
        "competing-risks model (Fine–Gray + cause-specific)": f"{base}/competing-risks-model?covariates=arm&covariates=age_years",
        "response model (logistic)": f"{base}/response-model?covariates=arm&covariates=age_years&covariates=risk_group",
        "response rates with trend by age band": f"{base}/response-rates?group_by=age&age_cuts=18,40,60&trend_order=age<18,18<=age<40,40<=age<60,age>=60",
        "Cox with a factor and an interaction": f"{base}/cox?covariates=arm&covariates=risk_group&covariates=age_years&interactions=arm*age_years",
        "Cox, Firth's penalised likelihood": f"{base}/cox?covariates=arm&covariates=age_years&firth=always",
    }


def read_latencies(port: int, path: str, token: str, seconds: float) -> list[float]:
    """A client reading one patient back to back for `seconds`: each request's latency."""
    latencies: list[float] = []
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=600
    ) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            assert c.get(path).status_code == 200
            latencies.append(time.perf_counter() - started)
    return latencies


def looping(port: int, path: str, token: str, done: threading.Event) -> None:
    """Another client requesting `path` back to back until `done`."""
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600) as c:
        while not done.is_set():
            c.get(f"http://127.0.0.1:{port}{path}")


def repeats(port: int, path: str, token: str, runs: int) -> dict[str, float]:
    """Seconds of the first request (computed), and medians of repeats (stored) and of
    conditional repeats (304)."""
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=600
    ) as c:
        # A warm-up of another answer (the first request of a new server starts its workers).
        c.get(path + ("&" if "?" in path else "?") + "conf_level=0.9")
        started = time.perf_counter()
        first = c.get(path)
        elapsed = time.perf_counter() - started
        assert first.status_code == 200, first.text[:300]
        timings: dict[str, list[float]] = {"repeat": [], "not_modified": []}
        for _ in range(max(runs, 5)):
            for kind, headers in (("repeat", {}), ("not_modified", {"If-None-Match": first.headers["etag"]})):
                started = time.perf_counter()
                response = c.get(path, headers=headers)
                timings[kind].append(time.perf_counter() - started)
                assert response.status_code == (200 if kind == "repeat" else 304)
    return {"first": elapsed, **{k: statistics.median(v) for k, v in timings.items()}}


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument(
        "--backends", default="sqlite,postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--read-seconds", type=float, default=5.0)
    parser.add_argument(
        "--only", default="", help="comma-separated words: only the analyses whose name has one"
    )
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    target = ROOT / "bench" / "analyses.json"
    # the figures of backends and analyses not run this time are kept
    out: dict[str, Any] = json.loads(target.read_text()) if target.exists() else {}
    log = ROOT / "bench" / ".data" / "analyses.log"
    for backend in args.backends.split(","):
        data = asyncio.run(prepare(backend, args.scale, os.environ.get("TEST_POSTGRES_URL")))
        token = issue_token(data.url, f"bench-{secrets.token_hex(4)}", "admin")
        read = f"{API}/patients/{data.patient_ids[0]}"
        print(
            f"# {backend}, {args.scale:,} patients in the large study ({time.strftime('%Y-%m-%d %H:%M')})",
            flush=True,
        )
        results: dict[str, Any] = {}
        with running("service", data.url, log) as (port, _):
            alone = read_latencies(port, read, token, args.read_seconds)
            print(f"  patient read alone: p99 {p99(alone) * 1000:.1f} ms ({len(alone)} reads)", flush=True)
            for name, path in paths(data.study_id).items():
                if wanted and not any(w in name for w in wanted):
                    continue
                times = timed_get(port, path, token, args.runs)
                done = threading.Event()
                worker = threading.Thread(target=looping, args=(port, path, token, done), daemon=True)
                worker.start()
                loaded = read_latencies(port, read, token, args.read_seconds)
                done.set()
                worker.join(timeout=600)
                results[name] = {
                    "seconds": times,
                    "read_p99_alone_ms": p99(alone) * 1000,
                    "read_p99_loaded_ms": p99(loaded) * 1000,
                }
                print(
                    f"  {name}: {statistics.median(times):.2f} s (runs {', '.join(f'{t:.2f}' for t in times)}); "
                    f"patient read p99 while it loops {p99(loaded) * 1000:.1f} ms ({p99(loaded) / p99(alone):.1f}x alone)",
                    flush=True,
                )
        # The same analyses on a service keeping answers: the first request computes, a repeat
        # on unchanged data is served from the store, and If-None-Match with its ETag gets 304.
        os.environ["BENCH_ANALYSIS_CACHE_MB"] = "64"
        try:
            with running("service", data.url, log) as (port, _):
                for name, path in paths(data.study_id).items():
                    if wanted and not any(w in name for w in wanted):
                        continue
                    results.setdefault(name, {})["stored"] = repeats(port, path, token, args.runs)
                    first, repeat, conditional = (
                        results[name]["stored"][k] for k in ("first", "repeat", "not_modified")
                    )
                    print(
                        f"  {name}, answers kept: first {first:.2f} s, repeat {repeat * 1000:.1f} ms, "
                        f"If-None-Match {conditional * 1000:.1f} ms (304)",
                        flush=True,
                    )
        finally:
            del os.environ["BENCH_ANALYSIS_CACHE_MB"]
        kept = (
            out.get(backend, {}).get("results", {}) if out.get(backend, {}).get("scale") == args.scale else {}
        )
        out[backend] = {"scale": args.scale, "results": {**kept, **results}}
    target.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
