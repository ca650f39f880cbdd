"""Binomial proportion confidence intervals and tests on 2×k tables (pure, no I/O).

Intervals follow Brown, Cai & DasGupta (2001), "Interval estimation for a binomial proportion",
Statistical Science 16(2):101–133, with α split equally between the tails."""

import math
from typing import Literal

import numpy as np

from service.analytics.lazy_scipy import optimize, stats

CiMethod = Literal["wilson", "agresti-coull", "clopper-pearson", "jeffreys", "wilson-cc", "mid-p"]
CI_METHOD_NAMES: dict[str, str] = {
    "wilson": "Wilson score interval (Brown, Cai & DasGupta 2001, eq. 4)",
    "agresti-coull": "Agresti–Coull interval with ñ = n + z² (Brown, Cai & DasGupta 2001, eq. 5), clipped to [0, 1]",
    "clopper-pearson": "Clopper–Pearson exact interval from beta quantiles (Brown, Cai & DasGupta 2001, eq. 7)",
    "jeffreys": "Jeffreys interval: equal-tailed Beta(x+½, n−x+½) quantiles, lower 0 when x = 0 and upper 1 when x = n (Brown, Cai & DasGupta 2001, §4.1.2)",
    "wilson-cc": "Wilson score interval with continuity correction, as R prop.test(x, n) (Newcombe 1998, method 4)",
    "mid-p": "Clopper–Pearson mid-p interval: each tail counts half the probability of the observed x (Lancaster 1961)",
}


def proportion_ci(x: int, n: int, method: CiMethod, conf_level: float) -> tuple[float, float] | None:
    """Two-sided interval for x successes in n trials; None when n = 0."""
    if n <= 0:
        return None
    alpha = 1.0 - conf_level
    z = float(stats.norm.isf(alpha / 2))
    p = x / n
    if method == "wilson":
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
        # The bounds are exactly 0 at x = 0 and 1 at x = n; floating point would miss by an ulp.
        return (0.0 if x == 0 else max(0.0, centre - half)), (1.0 if x == n else min(1.0, centre + half))
    if method == "agresti-coull":
        n_tilde = n + z * z
        p_tilde = (x + z * z / 2) / n_tilde
        half = z * math.sqrt(p_tilde * (1 - p_tilde) / n_tilde)
        return max(0.0, p_tilde - half), min(1.0, p_tilde + half)
    if method == "clopper-pearson":
        lower = 0.0 if x == 0 else float(stats.beta.ppf(alpha / 2, x, n - x + 1))
        upper = 1.0 if x == n else float(stats.beta.isf(alpha / 2, x + 1, n - x))
        return lower, upper
    if method == "jeffreys":
        lower = 0.0 if x == 0 else float(stats.beta.ppf(alpha / 2, x + 0.5, n - x + 0.5))
        upper = 1.0 if x == n else float(stats.beta.isf(alpha / 2, x + 0.5, n - x + 0.5))
        return lower, upper
    if method == "wilson-cc":
        return _wilson_continuity_corrected(x, n, z)
    if method == "mid-p":
        return _mid_p(x, n, alpha)
    raise ValueError(f"unknown CI method {method}")


def _wilson_continuity_corrected(x: int, n: int, z: float) -> tuple[float, float]:
    # R stats::prop.test: the correction is min(0.5, |x - n/2|) (its default p = 0.5).
    yates = min(0.5, abs(x - n * 0.5))
    z22n = z * z / (2 * n)
    p = x / n

    def bound(centre: float, sign: float) -> float:
        root = math.sqrt(centre * (1 - centre) / n + z22n / (2 * n))
        return (centre + z22n + sign * z * root) / (1 + 2 * z22n)

    upper = 1.0 if p + yates / n >= 1 else bound(p + yates / n, 1.0)
    lower = 0.0 if p - yates / n <= 0 else bound(p - yates / n, -1.0)
    return max(0.0, lower), min(1.0, upper)


def _mid_p(x: int, n: int, alpha: float) -> tuple[float, float]:
    def upper_tail(p: float) -> float:  # P(X > x) + P(X = x)/2
        return float(stats.binom.sf(x, n, p) + 0.5 * stats.binom.pmf(x, n, p))

    def lower_tail(p: float) -> float:  # P(X < x) + P(X = x)/2
        return float(stats.binom.cdf(x - 1, n, p) + 0.5 * stats.binom.pmf(x, n, p))

    eps = 1e-15
    lower = (
        0.0
        if x == 0
        else float(optimize.brentq(lambda p: upper_tail(p) - alpha / 2, eps, 1 - eps, xtol=1e-15))
    )
    upper = (
        1.0
        if x == n
        else float(optimize.brentq(lambda p: lower_tail(p) - alpha / 2, eps, 1 - eps, xtol=1e-15))
    )
    return lower, upper


def fisher_two_groups(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float | None]:
    """Fisher's exact two-sided p and the sample odds ratio (None when it is 0/0 or infinite)."""
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    result = stats.fisher_exact(table, alternative="two-sided")
    odds = float(result.statistic)
    return float(result.pvalue), (odds if math.isfinite(odds) else None)


def chi_square_independence(counts: list[tuple[int, int]]) -> tuple[float, int, float] | None:
    """Pearson chi-square of a k×2 (responders, non-responders) table: statistic, df, p.

    None when a row or column total is zero (the test is undefined)."""
    table = [[x, n - x] for x, n in counts]
    if any(sum(row) == 0 for row in table) or any(sum(col) == 0 for col in zip(*table, strict=True)):
        return None
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), int(result.dof), float(result.pvalue)
