"""The survival quantile's search (estimators._findq) vectorised with numpy answers exactly as
the loop it replaced, a line-for-line reading of R's survival:::findq, on any curve: repeated
values, NaN (a band undefined past a point), flats at p, p beyond the curve."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.analytics.survival.estimators import TOLERANCE, _findq


def findq_loop(x: np.ndarray, y: np.ndarray, p: float) -> float | None:
    finite = y[~np.isnan(y)]
    if finite.size == 0 or finite.max() < p:
        return None
    xmax = x[-1]
    keep: list[int] = []
    seen: set[float | str] = set()
    for i, value in enumerate(y):
        key: float | str = "NA" if math.isnan(value) else float(value)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    x, y = x[keep], y[keep]

    def first_reaching(curve: np.ndarray) -> int | None:
        pairs = sorted((float(v), i) for i, v in enumerate(curve) if not math.isnan(v))
        if not pairs or p < pairs[0][0] or p > pairs[-1][0]:
            return None
        return next(i for v, i in pairs if v >= p)

    index1, index2 = first_reaching(y + TOLERANCE), first_reaching(y - TOLERANCE)
    quantile = None if index1 is None or index2 is None else (x[index1] + x[index2]) / 2
    if not math.isnan(y[-1]) and abs(p - y[-1]) < TOLERANCE and index1 is not None:
        quantile = (x[index1] + xmax) / 2
    return None if quantile is None else float(quantile)


# Few distinct values, so that repeats, flats at p and ties within the tolerance are common.
VALUE = st.one_of(st.sampled_from([0.0, -0.0, 0.25, 0.5, 0.5 + 1e-12, 0.75, 1.0, math.nan]), st.floats(0, 1))


@settings(max_examples=1500, deadline=None)
@given(
    y=st.lists(VALUE, min_size=1, max_size=40),
    p=st.sampled_from([0.25, 0.5, 0.75, 0.9]),
    increasing=st.booleans(),
)
def test_the_vectorised_search_answers_as_the_loop(y: list[float], p: float, increasing: bool) -> None:
    curve = np.array(y, float)
    if increasing:  # a CDF as the estimators give it (NaNs where the band ends)
        finite = ~np.isnan(curve)
        curve[finite] = np.sort(curve[finite])
    x = np.arange(len(curve), dtype=float) * 1.5
    assert _findq(x, curve, p) == findq_loop(x, curve, p)
