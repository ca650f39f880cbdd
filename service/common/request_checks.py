"""What every request passes before its handler (the app's before_request hook; a controller
with a hook of its own calls it first, since Litestar runs only the closest layer's hook)."""

from typing import Any

from litestar import Request

from service.common.bodies import check_body
from service.common.strict_query import check_query


async def check_request(request: Request[Any, Any, Any]) -> None:
    """Strict query parameters, then a strict body."""
    check_query(request)
    await check_body(request)
