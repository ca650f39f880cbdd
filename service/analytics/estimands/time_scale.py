"""The analysis time scale: elapsed time between two study days, in days, weeks or months.

Study days follow SDTM: day 1 is the first day of study treatment and there is no day 0, so day -1
to day 1 is one day. Months are days / 30.4375 (the average Gregorian month)."""

import math
from typing import Literal

import numpy as np

TimeUnit = Literal["days", "weeks", "months"]
DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375}


def elapsed(origin: np.ndarray, end: np.ndarray, unit: TimeUnit) -> np.ndarray:
    """Elapsed days from origin to end study day in `unit`; crossing from day -1 to day 1 is one day."""
    crosses_zero = (origin < 0) & (end > 0)
    return np.asarray((end - origin - crosses_zero) / DAYS_PER_UNIT[unit])


def ticks(max_time: float) -> list[float]:
    """Whole-number times from 0 to max_time at a round step (about six): the ticks of a plot and
    the times of its number-at-risk table."""
    if max_time <= 0:
        return [0.0]
    raw = max_time / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    # whole numbers only: the at-risk table is read at the plot's ticks
    step = max(1.0, next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))
    return [i * step for i in range(int(max_time // step) + 1)]
