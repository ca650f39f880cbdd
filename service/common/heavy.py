"""CPU-bound work (statistics, plots, checks of import documents) in worker processes, so that the
server keeps answering other requests while one heavy request computes.

Threads are not enough: the estimators' loops over patients, the tally of responses and matplotlib
hold the GIL for long stretches, and a thread doing so stalls every request of its process (at
100,000 patients a patient read waited 1.4-8.5 s at p99 behind analyses in threads). Workers run
at a lower priority than the server, so on a machine (or CPU quota) shared with it they yield.

A request waits at most `wait` seconds for a free worker, then gets 503 with Retry-After: a burst
of heavy requests queues behind a fixed number of workers instead of each starting its own. Work
already running cannot be interrupted, so its duration is bounded by its input instead (plots
draw at most a page of patients; see service.analytics.plots.figures)."""

import asyncio
import contextlib
import gc
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import anyio

from service.errors import Busy

T = TypeVar("T")


def _prepare_worker(parent: int) -> None:
    """Lower the worker's priority, and end it when the server process is gone: a server killed
    without its shutdown (SIGKILL, out of memory) would otherwise leave its workers behind, each
    holding its memory for good."""
    os.nice(10)
    # Linux: the idle class, which runs only when nothing else wants the CPU. At niceness 10 two
    # busy workers still took about a fifth of a core shared with the server (the scheduler's
    # weights, 110 each against its 1,024), and a read waited behind them at the tail; in the
    # idle class they take what the server leaves.
    if hasattr(os, "SCHED_IDLE"):
        # A kernel or sandbox that refuses it leaves the niceness alone.
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# How many modules the worker had when its objects were last frozen (below).
_frozen_at = 0


def _in_worker(function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """`function` in this worker; after a call that imported modules (the first survival, the
    first regression, …), the worker's objects are frozen, as the server freezes its own once
    its app is built: the collector's full passes then skip the libraries, and a survival
    estimate at 100,000 patients no longer takes ~100 ms instead of ~27 ms one call in six
    (30 calls in one worker, a scratch script)."""
    global _frozen_at
    try:
        return function(*args, **kwargs)
    finally:
        if len(sys.modules) != _frozen_at:
            gc.collect()
            gc.freeze()
            _frozen_at = len(sys.modules)


class HeavyWork:
    def __init__(self, workers: int, wait: float) -> None:
        self.workers = max(workers, 1)
        self.limiter = anyio.CapacityLimiter(self.workers)
        self.wait = wait
        self._pool: ProcessPoolExecutor | None = None

    async def _turn(self) -> None:
        try:
            with anyio.fail_after(self.wait):
                await self.limiter.acquire()
        except TimeoutError:
            raise Busy(
                f"every worker for heavy requests stayed busy for {self.wait:g} s; try again shortly"
            ) from None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the server process has threads (the driver's, anyio's).
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_prepare_worker,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function` (module-level, arguments picklable) in a worker process. An argument with
        an async `pack_for_worker()` (large query results: service.analytics.fetched) is pickled by it first,
        a slice at a time: the executor pickles the arguments in one go, and holds the
        interpreter — so the event loop — while it does."""
        for argument in (*args, *kwargs.values()):
            pack = getattr(argument, "pack_for_worker", None)
            if pack is not None:
                await pack()
        await self._turn()
        try:
            try:
                return await asyncio.wrap_future(self._executor().submit(_in_worker, function, args, kwargs))
            except BrokenProcessPool:
                self._pool = None  # a worker died (killed, out of memory): start afresh next time
                raise Busy("a worker for heavy requests stopped unexpectedly; try again") from None
        finally:
            self.limiter.release()

    def adopt(self, other: "HeavyWork") -> None:
        """Take over `other`'s processes when they are as many as this one needs."""
        if other.workers == self.workers:
            self._pool, other._pool = other._pool, None

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


_workers = HeavyWork(2, 30.0)


def configure(workers: int, wait: float) -> None:
    """Set the process's workers (at app start, from Settings). Processes already started are
    kept when their number does not change: starting one costs about a second (it imports numpy,
    scipy and the estimators), and an app rebuilt in the same process should not pay it again.
    They end with the server process (concurrent.futures joins them at exit)."""
    global _workers
    replacement = HeavyWork(workers, wait)
    replacement.adopt(_workers)
    _workers.shutdown()
    _workers = replacement


async def offload(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `function` in one of the process's worker processes."""
    return await _workers.run(function, *args, **kwargs)
