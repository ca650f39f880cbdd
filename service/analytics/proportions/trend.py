"""The Cochran–Armitage test for a linear trend in proportions across ordered groups (pure, no
I/O), as R `prop.trend.test`: the weighted regression sum of squares of the groups' rates on
their scores, weights n/(p(1 − p)) with p the pooled rate."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.analytics.lazy_scipy import stats


@dataclass(frozen=True)
class TrendTest:
    chi_square: float
    p_value: float


def cochran_armitage(
    responders: Sequence[int], totals: Sequence[int], scores: Sequence[float]
) -> TrendTest | None:
    """Chi-square (1 df) for a linear trend in proportions over scored groups, as R
    prop.trend.test; None when it is undefined (no patients, all or none responding, one score)."""
    x, n, s = (np.asarray(v, float) for v in (responders, totals, scores))
    big_n, big_x = n.sum(), x.sum()
    if big_n == 0 or big_x in (0, big_n):
        return None
    p = big_x / big_n
    sxx = float(np.sum(n * s**2) - np.sum(n * s) ** 2 / big_n)
    if sxx <= 0:
        return None
    t = float(np.sum(x * s) - big_x * np.sum(n * s) / big_n)
    chi = t**2 / (p * (1 - p) * sxx)
    return TrendTest(chi_square=chi, p_value=float(stats.chi2.sf(chi, 1)))
