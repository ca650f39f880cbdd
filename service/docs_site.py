"""The API docs' edges: the vendored Swagger UI assets, served by name from a fixed list (a
path such as `swagger-ui.css%00.py` never reaches the file system), and problem+json for a
404 under /docs instead of Litestar's HTML page."""

from pathlib import Path
from typing import Any

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from service.auth.middleware import OPEN
from service.errors import PROBLEM_JSON, ProblemDetails

DOCS_ASSETS = Path(__file__).parent / "docs_assets"
ASSETS_URL = "/docs-assets"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
}
_CACHE: dict[str, bytes] = {}


@get(f"{ASSETS_URL}/{{name:str}}", include_in_schema=False, sync_to_thread=False, cache=3600, opt=OPEN)
def docs_asset(name: FromPath[str]) -> Response[bytes]:
    if name not in ASSETS:
        raise NotFoundException("No such docs asset.")
    if name not in _CACHE:
        _CACHE[name] = (DOCS_ASSETS / name).read_bytes()
    return Response(_CACHE[name], media_type=ASSETS[name])


def _docs_not_found_as_problem(response: Response[Any]) -> Response[Any]:
    if response.status_code != 404 or PROBLEM_JSON in str(response.media_type):
        return response
    body = ProblemDetails(
        type="/problems/not-found",
        title="Resource not found",
        status=404,
        detail="No such documentation page.",
    )
    return Response(body, status_code=404, media_type=PROBLEM_JSON)


def docs_router() -> Router:
    """The router Litestar's OpenAPI plugin fills with the docs pages (see OpenAPIConfig)."""
    return Router(
        "/docs",
        route_handlers=[],
        include_in_schema=False,
        after_request=_docs_not_found_as_problem,
        opt=OPEN,
    )
