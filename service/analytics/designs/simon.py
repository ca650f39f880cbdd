"""Phase 2 design calculations (no study data): Simon's (1989) optimal and minimax two-stage
designs, searched exactly (the designs of Simon's Table 1 and R `clinfun::ph2simon`)."""

from dataclasses import dataclass

import numpy as np
from scipy import stats

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


def _result(design: TwoStageDesign | None) -> TwoStageDesignResult | None:
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
        optimal=_result(optimal),
        minimax=_result(minimax),
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
