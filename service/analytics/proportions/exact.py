"""Exact and small-sample inference (pure, no I/O), each as the R function named.

- `binomial_test`: R `binom.test` (scipy's `binomtest` computes the same p).
- `newcombe_difference`: Newcombe's (1998) hybrid score interval for p1 − p2 (his method 10),
  from the two Wilson intervals.
- `fisher_odds_ratio`: the conditional maximum-likelihood odds ratio and its exact interval,
  R `fisher.test`'s method (scipy's conditional `odds_ratio`).
- `fisher_freeman_halton`: Fisher's exact test of an r × c table (R `fisher.test` on r × c)
  by enumerating the tables with the observed margins; None when there are too many."""

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

from service.analytics.lazy_scipy import special, stats
from service.analytics.proportions.intervals import proportion_ci

RELATIVE = 1 + 1e-7  # R's tolerance when comparing probabilities to the observed one
Alternative = Literal["two-sided", "greater", "less"]


def binomial_test(x: int, n: int, p: float, alternative: Alternative = "two-sided") -> float:
    """scipy's binomtest, whose two-sided p is R's (outcomes no more likely than the observed
    one, with the same 1 + 1e-7 relative tolerance)."""
    return float(stats.binomtest(x, n, p, alternative=alternative).pvalue)


def newcombe_difference(
    x1: int, n1: int, x2: int, n2: int, conf_level: float = 0.95
) -> tuple[float, float, float] | None:
    """(p1 − p2, lower, upper); None when a group has no patients."""
    first, second = proportion_ci(x1, n1, "wilson", conf_level), proportion_ci(x2, n2, "wilson", conf_level)
    if first is None or second is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = first, second
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass(frozen=True)
class OddsRatio:
    estimate: float  # conditional MLE; inf when the first cell is at its maximum
    lower: float
    upper: float
    p_value: float  # Fisher's two-sided p


def fisher_odds_ratio(table: list[list[int]], conf_level: float = 0.95) -> OddsRatio:
    """R `fisher.test(matrix(c(a, c, b, d), 2))` for table [[a, b], [c, d]]: scipy's conditional
    odds ratio (the noncentral hypergeometric MLE and its exact interval, fisher.test's method)."""
    result = stats.contingency.odds_ratio(table, kind="conditional")
    interval = result.confidence_interval(conf_level)
    p_value = float(stats.fisher_exact(np.asarray(table)).pvalue)
    return OddsRatio(float(result.statistic), float(interval.low), float(interval.high), p_value)


MAX_TABLES = 2_000_000


@cache
def _log_factorial(n: int) -> float:
    return float(special.gammaln(n + 1))


def fisher_freeman_halton(table: list[list[int]]) -> float | None:
    """Two-sided exact p of an r × c table: the probability of every table with the same margins
    no more likely than the observed one (R's 1e-7 relative tolerance). None when more than
    MAX_TABLES tables would have to be enumerated."""
    rows = [r for r in table if sum(r) > 0]
    cols = [sum(column) for column in zip(*rows, strict=True)] if rows else []
    keep = [j for j, total in enumerate(cols) if total > 0]
    rows = [[r[j] for j in keep] for r in rows]
    cols = [cols[j] for j in keep]
    if len(rows) < 2 or len(cols) < 2:
        return 1.0
    total = sum(cols)
    constant = (
        sum(_log_factorial(sum(r)) for r in rows)
        + sum(_log_factorial(c) for c in cols)
        - _log_factorial(total)
    )

    def log_p(cells: list[int]) -> float:
        return constant - sum(_log_factorial(c) for c in cells)

    observed = log_p([c for r in rows for c in r])
    threshold = observed + math.log(RELATIVE)
    row_totals = [sum(r) for r in rows]
    p = 0.0
    count = 0

    def fill(row: int, remaining: list[int], log_cells: float) -> bool:
        nonlocal p, count
        if row == len(row_totals) - 1:
            count += 1
            lp = constant - log_cells - sum(_log_factorial(c) for c in remaining)
            if lp <= threshold:
                p += math.exp(lp)
            return count <= MAX_TABLES
        for cells in _compositions(row_totals[row], remaining):
            rest = [r - c for r, c in zip(remaining, cells, strict=True)]
            if not fill(row + 1, rest, log_cells + sum(_log_factorial(c) for c in cells)):
                return False
        return True

    if not fill(0, cols, 0.0):
        return None
    return min(1.0, p)


def _compositions(total: int, bounds: list[int]) -> "list[list[int]]":
    """Every way to split `total` into len(bounds) cells, cell j at most bounds[j]."""
    if len(bounds) == 1:
        return [[total]] if total <= bounds[0] else []
    room = sum(bounds[1:])
    out: list[list[int]] = []
    for first in range(max(0, total - room), min(total, bounds[0]) + 1):
        out.extend([first, *rest] for rest in _compositions(total - first, bounds[1:]))
    return out


def expected_counts_below_5(table: list[list[int]]) -> int:
    """Cells whose expected count under independence is below 5 (the chi-square's rule of thumb)."""
    array = np.array(table, float)
    total = array.sum()
    if total == 0:
        return 0
    expected = np.outer(array.sum(axis=1), array.sum(axis=0)) / total
    return int(np.count_nonzero(expected < 5))
