from typing import Any

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin


def openapi_document(app: Litestar) -> dict[str, Any]:
    """The completed OpenAPI document exactly as the app serves it at /docs/openapi.json."""
    return app.plugins.get(OpenAPIPlugin).provide_openapi_schema()


def serve_document(app: Litestar, document: dict[str, Any]) -> None:
    """Make `document` the one the app serves, as provide_openapi_schema() would have built it."""
    app.plugins.get(OpenAPIPlugin)._openapi_schema = document
