"""Concurrent requests through two app instances on one database, as replicas behind a load
balancer would send them: the harness of the race tests."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from service.app import create_app
from service.settings import Settings

Call = Callable[[httpx.AsyncClient, int], Coroutine[Any, Any, httpx.Response]]


def race(database_url: str, racers: int, call: Call) -> list[httpx.Response]:
    """Start `call(client, i)` for i in range(racers) at once, alternating between two replicas."""
    replicas = [create_app(Settings(database_url=database_url, rate_limit_per_minute=0)) for _ in range(2)]

    async def run() -> list[httpx.Response]:
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replica")
            for app in replicas
        ]
        try:
            return list(await asyncio.gather(*(call(clients[i % 2], i) for i in range(racers))))
        finally:
            for client in clients:
                await client.aclose()
            for app in replicas:
                await app.state.engine.dispose()

    return asyncio.run(run())
