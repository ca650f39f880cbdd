"""Exact and small-sample inference (pure, no I/O), each as the R function named.

- `binomial_test`: R `binom.test` (scipy's `binomtest` computes the same p).
- `simon_two_stage`: Simon's (1989) optimal and minimax two-stage designs, searched exactly
  (the designs of Simon's Table 1 and R `clinfun::ph2simon`).
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
from scipy import stats
from scipy.special import gammaln
from scipy.stats import contingency

from service.analytics.proportions import proportion_ci

RELATIVE = 1 + 1e-7  # R's tolerance when comparing probabilities to the observed one
Alternative = Literal["two-sided", "greater", "less"]


def binomial_test(x: int, n: int, p: float, alternative: Alternative = "two-sided") -> float:
    """scipy's binomtest, whose two-sided p is R's (outcomes no more likely than the observed
    one, with the same 1 + 1e-7 relative tolerance)."""
    return float(stats.binomtest(x, n, p, alternative=alternative).pvalue)


@dataclass(frozen=True)
class TwoStageDesign:
    r1: int  # stop for futility after stage 1 with r1 or fewer responses of n1
    n1: int
    r: int  # reject the drug with r or fewer responses of n in all
    n: int
    expected_n0: float  # expected sample size under p0
    early_stop0: float  # probability of stopping after stage 1 under p0
    alpha: float  # actual type I error
    power: float  # actual power at p1


def simon_two_stage(
    p0: float, p1: float, alpha: float, beta: float, n_max: int = 100
) -> tuple[TwoStageDesign | None, TwoStageDesign | None]:
    """(optimal, minimax) designs with n ≤ n_max, None where none meets the error rates.
    For each (n, n1, r1) the only candidate is the smallest r with type I error ≤ alpha (a
    larger r only lowers power, and the expected size does not depend on r). Optimal: the
    smallest expected size under p0; minimax: the smallest n, ties broken by expected size."""
    optimal: TwoStageDesign | None = None
    minimax: TwoStageDesign | None = None
    # binomial pmf and cdf for every size up to n_max, computed once (scipy per call is slow)
    sizes = range(n_max + 1)
    pmf = {p: [stats.binom.pmf(np.arange(m + 1), m, p) for m in sizes] for p in (p0, p1)}
    cdf = {p: [np.cumsum(row) for row in pmf[p]] for p in (p0, p1)}
    for n in range(2, n_max + 1):
        for n1 in range(1, n):
            n2 = n - n1
            x1 = np.arange(n1 + 1)
            gaps = np.arange(n + 1)[None, :] - x1[:, None]  # r − x1
            accept = {}
            for label, p in (("p0", p0), ("p1", p1)):
                # M[x1, r] = P(X1 = x1) · P(X2 ≤ r − x1); S[r1, r] = Σ_{x1 > r1} M[x1, r]
                second = np.where(gaps < 0, 0.0, cdf[p][n2][np.clip(gaps, 0, n2)])
                m = pmf[p][n1][:, None] * second
                tail = np.cumsum(m[::-1], axis=0)[::-1]
                above = np.vstack((tail[1:], np.zeros((1, n + 1))))
                accept[label] = cdf[p][n1][:, None] + above
            for r1 in range(n1):
                type_one = 1 - accept["p0"][r1, r1:]
                meets = np.nonzero(type_one <= alpha)[0]
                if meets.size == 0:
                    continue
                r_best = r1 + int(meets[0])
                power = 1 - float(accept["p1"][r1, r_best])
                if power < 1 - beta:
                    continue
                stop0 = float(cdf[p0][n1][r1])
                design = TwoStageDesign(
                    r1, n1, r_best, n, n1 + (1 - stop0) * n2, stop0, float(type_one[meets[0]]), power
                )
                if optimal is None or design.expected_n0 < optimal.expected_n0 - 1e-12:
                    optimal = design
                if minimax is None or (n == minimax.n and design.expected_n0 < minimax.expected_n0 - 1e-12):
                    minimax = design
    return optimal, minimax


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
    result = contingency.odds_ratio(table, kind="conditional")
    interval = result.confidence_interval(conf_level)
    p_value = float(stats.fisher_exact(np.asarray(table)).pvalue)
    return OddsRatio(float(result.statistic), float(interval.low), float(interval.high), p_value)


MAX_TABLES = 2_000_000


@cache
def _log_factorial(n: int) -> float:
    return float(gammaln(n + 1))


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
