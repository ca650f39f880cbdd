"""What the web process needs of the plots: their formats and media types, the swimmer plot's
lane limit, and the four drawing entry points that the controllers hand to a worker process
(service.common.heavy). matplotlib (a second of import, tens of megabytes) is loaded by
service.analytics.plots.figures, which these entry points import only when they run: in the
worker process that draws, never in the server process that only passes them by name."""

from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

from service.analytics.schemas import CumulativeIncidence, Survival

ImageFormat = Literal["svg", "png"]
# A lane per patient: beyond this a plot is unreadable and slow to draw, so larger studies are
# drawn a page at a time.
MAX_SWIMMER_LANES = 200
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def kaplan_meier_plot(result: Survival, title: str, ci_bands: bool, image_format: ImageFormat) -> bytes:
    from service.analytics.plots import figures

    return figures.render(figures.kaplan_meier_figure(result, title, ci_bands), image_format)


def cumulative_incidence_plot(result: CumulativeIncidence, title: str, image_format: ImageFormat) -> bytes:
    from service.analytics.plots import figures

    return figures.render(figures.cumulative_incidence_figure(result, title), image_format)


def forest_plot(result: Any, image_format: ImageFormat) -> bytes:
    from service.analytics.plots import figures

    return figures.render(figures.forest_figure(result), image_format)


def swimmer_plot(
    patients: Sequence[tuple[UUID, str, str, int | None]],
    treatments: Sequence[Any],
    outcomes: Sequence[Any],
    title: str,
    image_format: ImageFormat,
) -> bytes:
    from service.analytics.plots import figures

    return figures.render(figures.swimmer_figure(patients, treatments, outcomes, title), image_format)
