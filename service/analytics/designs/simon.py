"""Phase 2 design calculations (no study data): Simon's (1989) optimal and minimax two-stage
designs, searched exactly (the designs of Simon's Table 1 and R `clinfun::ph2simon`)."""

import functools
import math
from dataclasses import dataclass

import numpy as np

from service.analytics.lazy_scipy import stats
from service.analytics.schemas import SimonTwoStage, TwoStageDesignResult


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


@functools.lru_cache(maxsize=256)  # a design request repeats (dashboards, retries): answer at once
def simon_two_stage(
    p0: float, p1: float, alpha: float, beta: float, n_max: int = 100
) -> tuple[TwoStageDesign | None, TwoStageDesign | None]:
    """(optimal, minimax) designs with n ≤ n_max, None where none meets the error rates.
    For each (n, n1, r1) the only candidate is the smallest r with type I error ≤ alpha (a
    larger r only lowers power, and the expected size does not depend on r). Optimal: the
    smallest expected size under p0; minimax: the smallest n, ties broken by expected size.

    For each n every (n1, r1, r) is evaluated at once in arrays, within bounds that no design
    can cross: power needs P(Bin(n, p1) <= r) <= beta (accepting includes X1 + X2 <= r), which
    bounds r; the type I error falls as r grows, so a first stage that misses alpha at the
    largest such r misses it everywhere; and the expected size under p0 is at least n1, so
    once a design is known only smaller first stages can improve on it."""
    size = n_max + 1
    # pmf[p][m, x] = P(Bin(m, p) = x); cdf[p][m, k] = P(Bin(m, p) <= k), 1 for k >= m
    grid = np.arange(size)
    pmf: dict[float, np.ndarray] = {
        p: np.asarray(stats.binom.pmf(grid[None, :], grid[:, None], p), float) for p in (p0, p1)
    }
    cdf = {p: np.cumsum(pmf[p], axis=1) for p in (p0, p1)}

    def accept(p: float, n: int, n1: np.ndarray, x1: np.ndarray, r: np.ndarray) -> np.ndarray:
        """P(X1 <= r1 or X1 + X2 <= r) under p, as [n1, r1, r] (r1 runs over x1)."""
        gaps = r[None, None, :] - x1[None, :, None]  # r − x1
        # M[n1, x1, r] = P(X1 = x1) · P(X2 ≤ r − x1); above[n1, r1, r] = Σ_{x1 > r1} M
        second = np.where(gaps < 0, 0.0, cdf[p][(n - n1)[:, None, None], np.clip(gaps, 0, None)])
        m = pmf[p][n1[:, None], x1[None, :]][:, :, None] * second
        tail = np.cumsum(m[:, ::-1, :], axis=1)[:, ::-1, :]
        above = np.concatenate((tail[:, 1:, :], np.zeros((len(n1), 1, len(r)))), axis=1)
        return np.asarray(cdf[p][n1[:, None], x1[None, :]][:, :, None] + above)

    optimal: TwoStageDesign | None = None
    minimax: TwoStageDesign | None = None
    for n in range(2, size):
        limit = n - 1
        if optimal is not None:
            limit = min(limit, math.ceil(optimal.expected_n0 - 1e-12) - 1)
        r_max = int(np.searchsorted(cdf[p1][n, : n + 1], beta, side="right")) - 1
        if limit < 1 or r_max < 0:
            continue
        n1 = np.arange(1, limit + 1)  # first-stage sizes
        x1 = np.arange(min(limit, r_max) + 1)  # first-stage responses (and r1)
        valid = (x1[None, :] < n1[:, None]) & (1 - cdf[p1][n1[:, None], x1[None, :]] >= 1 - beta)
        if optimal is not None and minimax is not None:
            # Once both are known only a smaller expected size matters, and for a given (n1, r1)
            # the expected size n1 + P0(go on)·(n − n1) only grows with n.
            expected = n1[:, None] + (1 - cdf[p0][n1[:, None], x1[None, :]]) * (n - n1)[:, None]
            valid &= expected < optimal.expected_n0 - 1e-12
        # the type I error at the largest r power allows: the least any r can give
        valid &= 1 - accept(p0, n, n1, x1, np.array([r_max]))[:, :, 0] <= alpha
        if not valid.any():
            continue
        keep = valid.any(axis=1)
        n1, valid = n1[keep], valid[keep]
        r = np.arange(r_max + 1)
        accept0 = accept(p0, n, n1, x1, r)
        # the smallest r >= r1 whose type I error is within alpha
        r1 = x1
        meets = (1 - accept0 <= alpha) & (r[None, None, :] >= r1[None, :, None])
        has = meets.any(axis=2) & valid
        r_best = np.argmax(meets, axis=2)
        # the power at that r only: P(X1 <= r1) + Σ_{r1 < x1 <= r} P(X1 = x1) P(X2 <= r − x1)
        gaps = r_best[:, :, None] - x1[None, None, :]
        above = (x1[None, None, :] > r1[None, :, None]) & (gaps >= 0)
        second = np.where(above, cdf[p1][(n - n1)[:, None, None], np.clip(gaps, 0, None)], 0.0)
        accept1 = cdf[p1][n1[:, None], r1[None, :]] + (
            pmf[p1][n1[:, None], x1[None, :]][:, None, :] * second
        ).sum(axis=2)
        power = 1 - accept1
        feasible = has & (power >= 1 - beta)
        if not feasible.any():
            continue
        stop0 = cdf[p0][n1[:, None], r1[None, :]]
        expected = n1[:, None] + (1 - stop0) * (n - n1)[:, None]
        type_one = 1 - np.take_along_axis(accept0, r_best[:, :, None], axis=2)[:, :, 0]
        rows, cols = np.nonzero(feasible)  # (n1, r1) in the order of the exhaustive search
        values = expected[rows, cols]
        k = _first_minimum(values)
        i, j = rows[k], cols[k]
        best = TwoStageDesign(
            int(r1[j]),
            int(n1[i]),
            int(r_best[i, j]),
            n,
            float(expected[i, j]),
            float(stop0[i, j]),
            float(type_one[i, j]),
            float(power[i, j]),
        )
        if minimax is None:
            minimax = best
        if optimal is None or best.expected_n0 < optimal.expected_n0 - 1e-12:
            optimal = best
    return optimal, minimax


def _first_minimum(values: np.ndarray) -> int:
    """The index a running minimum that moves only on a drop of more than 1e-12 ends on."""
    index = 0
    while True:
        better = np.nonzero(values[index + 1 :] < values[index] - 1e-12)[0]
        if better.size == 0:
            return index
        index += 1 + int(better[0])


def incidence_result(design: TwoStageDesign | None) -> TwoStageDesignResult | None:
    if design is None:
        return None
    return TwoStageDesignResult(
        r1=design.r1,
        n1=design.n1,
        r=design.r,
        n=design.n,
        expected_n_p0=design.expected_n0,
        early_stop_p0=design.early_stop0,
        alpha=design.alpha,
        power=design.power,
    )


def simon_designs(p0: float, p1: float, alpha: float, beta: float, n_max: int) -> SimonTwoStage:
    optimal, minimax = simon_two_stage(p0, p1, alpha, beta, n_max)
    return SimonTwoStage(
        p0=p0,
        p1=p1,
        alpha=alpha,
        beta=beta,
        n_max=n_max,
        optimal=incidence_result(optimal),
        minimax=incidence_result(minimax),
        method={
            "search": "every (n1, n, r1) with n <= n_max; for each the smallest r keeping the type I error <= alpha, kept when the power at p1 is >= 1 - beta",
            "optimal": "smallest expected sample size under p0",
            "minimax": "smallest n, ties broken by the expected sample size under p0",
            "reference": "Simon R. Optimal two-stage designs for phase II clinical trials. Control Clin Trials 1989;10:1-10",
        },
        warnings=[]
        if optimal
        else [f"no design with at most {n_max} patients meets alpha = {alpha:g} and power = {1 - beta:g}"],
    )
