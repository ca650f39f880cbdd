"""One media type per plot operation: each plot is drawn at its path as SVG and at the same path
with `.png` as PNG, two operations in the contract (`getSurvivalPlot`, `getSurvivalPlotPng`), so
that a generated client decodes each body as what it is. `format=` still chooses: the format the
path does not draw answers 307 with the other operation's `Location`."""

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Redirect
from litestar.types import Method, OperationIDCreator

from service.analytics.plots.images import ImageFormat

FormatParam = Annotated[
    ImageFormat | None,
    QueryParameter(
        description="svg or png; by default the operation's own (SVG at the path, PNG at the path with `.png`). "
        "The other one redirects (307) to its operation.",
    ),
]
REDIRECT = {
    307: ResponseSpec(data_container=None, description="`format` names the other format: see `Location`")
}


def paths(path: str) -> list[str]:
    return [path, f"{path}.png"]


def operation_id(name: str) -> OperationIDCreator:
    """`name` for the SVG path, `{name}Png` for its `.png` twin."""

    def create(handler: Any, method: Method, components: list[Any]) -> str:
        last = components[-1]
        return f"{name}Png" if isinstance(last, str) and last.endswith(".png") else name

    return create


def chosen(request: Request[Any, Any, Any], format: ImageFormat | None) -> ImageFormat | Redirect:
    """The format this path draws, or the redirect to the operation drawing the one asked for."""
    png_path = request.url.path.endswith(".png")
    own: ImageFormat = "png" if png_path else "svg"
    if format is None or format == own:
        return own
    target = request.url.path.removesuffix(".png") if png_path else f"{request.url.path}.png"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "format"]
    return Redirect(
        target + (f"?{urlencode(query)}" if query else ""), status_code=307, media_type="text/plain"
    )
