"""Comparing a recomputed figure with a printed one at the printed precision."""

import math


def decimals(printed: float) -> int:
    """Decimal places of a printed number as stored (92.3 -> 1, 0.226 -> 3, 100.0 -> 0).

    A trailing zero the publication printed ("20.0%") is not kept by a float; comparing at fewer
    places is the lenient side, so no inconsistency is ever invented by it."""
    return len(f"{float(printed):.10f}".rstrip("0").split(".")[1])


def same_at_precision(computed: float, printed: float) -> bool:
    """Equal once the computed value is rounded half up to the printed decimals."""
    places = decimals(printed)
    scaled = computed * 10**places
    rounded = math.floor(scaled + 0.5 + 1e-9) / 10**places
    return bool(abs(rounded - printed) < 0.5 * 10**-places * 1e-6 + 1e-12)


def fmt(value: float | None, places: int | None = None) -> str | None:
    if value is None:
        return None
    return f"{value:.{places}f}" if places is not None else f"{value:g}"
