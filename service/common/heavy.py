"""CPU-bound work (statistics, plot rendering) in worker threads, a few at a time, so that the
event loop keeps answering other requests while one heavy request computes.

A request waits at most `wait` seconds for a worker, then gets 503 with Retry-After: a burst of
plot requests queues behind a fixed number of workers instead of each starting its own render.
Work already running in a thread cannot be interrupted, so its duration is bounded by its input
instead (plots draw at most a page of patients; see service.analytics.plots)."""

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

from service.errors import Busy

P = ParamSpec("P")
T = TypeVar("T")


class HeavyWork:
    def __init__(self, workers: int, wait: float) -> None:
        self.limiter = anyio.CapacityLimiter(max(workers, 1))
        self.wait = wait

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            with anyio.fail_after(self.wait):
                await self.limiter.acquire()
        except TimeoutError:
            raise Busy(
                f"every statistics worker stayed busy for {self.wait:g} s; try again shortly"
            ) from None
        try:
            return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))
        finally:
            self.limiter.release()


_workers = HeavyWork(2, 30.0)


def configure(workers: int, wait: float) -> None:
    """Set the process's workers (at app start, from Settings)."""
    global _workers
    _workers = HeavyWork(workers, wait)


async def offload(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `function` in one of the process's workers."""
    return await _workers.run(function, *args, **kwargs)
