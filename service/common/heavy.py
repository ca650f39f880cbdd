"""CPU-bound work off the event loop, so that it keeps answering other requests while one heavy
request computes:

- statistics (numpy, scipy) in worker threads: they release the GIL for most of their work and
  need their inputs without copying;
- plots (matplotlib) in worker processes: rendering holds the GIL for long stretches, which in a
  thread would stall every other request of the process for as long.

A request waits at most `wait` seconds for a free worker, then gets 503 with Retry-After: a burst
of heavy requests queues behind a fixed number of workers instead of each starting its own. Work
already running cannot be interrupted, so its duration is bounded by its input instead (plots
draw at most a page of patients; see service.analytics.plots.figures)."""

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread

from service.errors import Busy

P = ParamSpec("P")
T = TypeVar("T")


def _lower_priority() -> None:
    # A plot worker yields the CPU to the server process: on a machine (or a CPU quota) shared
    # with it, a render must not make every other request wait for its time slice.
    os.nice(10)


class HeavyWork:
    def __init__(self, workers: int, wait: float, processes: int = 1) -> None:
        self.limiter = anyio.CapacityLimiter(max(workers, 1))
        self.process_limiter = anyio.CapacityLimiter(max(processes, 1))
        self.processes = max(processes, 1)
        self.wait = wait
        self._pool: ProcessPoolExecutor | None = None

    async def _turn(self, limiter: anyio.CapacityLimiter) -> None:
        try:
            with anyio.fail_after(self.wait):
                await limiter.acquire()
        except TimeoutError:
            raise Busy(
                f"every worker for heavy requests stayed busy for {self.wait:g} s; try again shortly"
            ) from None

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function` in a worker thread."""
        await self._turn(self.limiter)
        try:
            return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))
        finally:
            self.limiter.release()

    async def run_in_process(self, function: Callable[..., T], *args: Any) -> T:
        """`function` (module-level, arguments picklable) in a worker process."""
        await self._turn(self.process_limiter)
        try:
            if self._pool is None:
                # spawn, not fork: the server process has threads (the driver's, the workers').
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_lower_priority,
                )
            try:
                return await asyncio.wrap_future(self._pool.submit(function, *args))
            except BrokenProcessPool:
                self._pool = None  # a worker died (killed, out of memory): start afresh next time
                raise Busy("the plot worker stopped unexpectedly; try again") from None
        finally:
            self.process_limiter.release()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


_workers = HeavyWork(2, 30.0)


def configure(workers: int, wait: float, processes: int) -> None:
    """Set the process's workers (at app start, from Settings)."""
    global _workers
    _workers.shutdown()
    _workers = HeavyWork(workers, wait, processes)


def shutdown() -> None:
    _workers.shutdown()


async def offload(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `function` in one of the process's worker threads."""
    return await _workers.run(function, *args, **kwargs)


async def offload_to_process(function: Callable[..., T], *args: Any) -> T:
    """Run `function` in one of the process's worker processes."""
    return await _workers.run_in_process(function, *args)
