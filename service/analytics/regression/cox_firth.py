"""Firth's penalised Cox regression (pure, no I/O), as R `coxphf(pl = TRUE)` (Heinze & Schemper
2001): the log partial likelihood (Breslow ties, as coxphf) plus half the log determinant of its
information, l*(beta) = l(beta) + ½·log|I(beta)| (Firth 1993). Its maximum is finite where the
likelihood is monotone (a group without events, common in small leukemia cohorts), where the
unpenalised estimate runs off to infinity.

- Estimate: Newton steps on the modified score U*_r = U_r + ½·tr(I⁻¹ ∂I/∂beta_r) with the
  information as the Hessian (as coxphf), halved while the penalised likelihood falls; ∂I/∂beta_r
  from the third moments of the covariates over the risk sets.
- Intervals: profile penalised likelihood, {b : 2·(l*max − max l* with beta_j = b) ≤ χ²₁}; p-values
  the penalised likelihood-ratio test of beta_j = 0 (coxphf's defaults, better than Wald at these
  sizes); the global test 2·(l*(beta) − l*(0)) on p df.
- Variance: the inverse information at the estimate (coxphf's `var`)."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.analytics.lazy_scipy import optimize, stats

MAX_ITER = 200
MAX_STEP = 5.0  # a Newton step longer than this (log hazard ratio) is shortened, as coxphf's maxstep


@dataclass(frozen=True)
class FirthCoxFit:
    coef: np.ndarray
    var: np.ndarray
    penalised_loglik_null: float
    penalised_loglik: float
    ci_lower: np.ndarray  # of the hazard ratio, profile penalised likelihood
    ci_upper: np.ndarray
    p: np.ndarray  # penalised likelihood-ratio test of each coefficient
    converged: bool
    n: int
    events: int

    @property
    def likelihood_ratio(self) -> float:
        return 2 * (self.penalised_loglik - self.penalised_loglik_null)


class _Breslow:
    """The Breslow log partial likelihood, its score, information and the information's
    derivative (the third moments of the covariates over each risk set), from sums over the rows
    sorted by time: a risk set is every row at or after its event time, in its stratum."""

    def __init__(self, times: np.ndarray, events: np.ndarray, x: np.ndarray, strata: np.ndarray) -> None:
        order = np.lexsort((-times, strata))
        self.t, self.e, self.x, self.s = times[order], events[order], x[order], strata[order]
        # the last row of each (stratum, time) block closes the risk set of that time
        last = np.r_[(self.t[1:] != self.t[:-1]) | (self.s[1:] != self.s[:-1]), True]
        block = np.cumsum(np.r_[0, last[:-1]])
        self.block_end = np.flatnonzero(last)
        dead = np.bincount(block, weights=self.e, minlength=len(self.block_end))
        self.with_deaths = dead > 0
        self.deaths = dead[self.with_deaths]
        self.starts = np.r_[0, np.flatnonzero(self.s[1:] != self.s[:-1]) + 1]

    def _risk_sums(self, values: np.ndarray) -> np.ndarray:
        """Sums over each event time's risk set (cumulative within the stratum)."""
        total = np.cumsum(values, axis=0)
        before = np.zeros_like(total)
        for first in self.starts[1:]:
            before[first:] = total[first - 1]
        return np.asarray((total - before)[self.block_end][self.with_deaths])

    def __call__(
        self, beta: np.ndarray, third: bool = False
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray | None]:
        x = self.x
        eta = x @ beta
        r = np.exp(eta - eta.max())  # rescaled: the ratios below do not change
        s0 = self._risk_sums(r)
        s1 = self._risk_sums(r[:, None] * x)
        s2 = self._risk_sums(r[:, None, None] * x[:, :, None] * x[:, None, :])
        mean = s1 / s0[:, None]
        d = self.deaths
        loglik = float(eta[self.e].sum() - (d * (np.log(s0) + eta.max())).sum())
        u = x[self.e].sum(axis=0) - (d[:, None] * mean).sum(axis=0)
        second = s2 / s0[:, None, None]
        imat = (d[:, None, None] * (second - mean[:, :, None] * mean[:, None, :])).sum(axis=0)
        if not third:
            return loglik, u, imat, None
        # ∂I/∂beta_r = Σ d·[S3_r/S0 − (S2/S0)·m_r − ∂m_r m' − m ∂m_r'], ∂m_r = S2[:, r]/S0 − m·m_r;
        # one r at a time, so that the third moments never take n·p³ memory
        dmean = second - mean[:, :, None] * mean[:, None, :]  # [k, i, r] = ∂m_i/∂beta_r
        derivative = np.empty((len(beta),) * 3)
        for k in range(len(beta)):
            s3 = self._risk_sums((r * x[:, k])[:, None, None] * x[:, :, None] * x[:, None, :])
            derivative[:, :, k] = (
                d[:, None, None]
                * (
                    s3 / s0[:, None, None]
                    - second * mean[:, k, None, None]
                    - dmean[:, :, k, None] * mean[:, None, :]
                    - mean[:, :, None] * dmean[:, None, :, k]
                )
            ).sum(axis=0)
        return loglik, u, imat, derivative


def _penalised(likelihood: _Breslow, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        loglik, u, imat, derivative = likelihood(beta, third=True)
    if not (math.isfinite(loglik) and np.all(np.isfinite(imat))) or derivative is None:
        return -math.inf, u, imat
    sign, logdet = np.linalg.slogdet(imat)
    if sign <= 0:
        return -math.inf, u, imat
    inverse = np.linalg.inv(imat)
    # U*_r = U_r + ½·tr(I⁻¹ ∂I/∂beta_r)
    modified = u + 0.5 * np.einsum("ij,jir->r", inverse, derivative)
    return loglik + 0.5 * logdet, modified, imat


def _maximise(
    likelihood: _Breslow, start: np.ndarray, free: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """The penalised maximum over the coefficients in `free`, the others held at `start`."""
    beta = start.astype(float).copy()
    value, score, imat = _penalised(likelihood, beta)
    for _ in range(MAX_ITER):
        step = np.zeros(len(beta))
        step[free] = np.linalg.solve(imat[np.ix_(free, free)], score[free])
        longest = float(np.max(np.abs(step))) if len(free) else 0.0
        if longest > MAX_STEP:
            step *= MAX_STEP / longest
        candidate = _penalised(likelihood, beta + step)
        halvings = 0
        while candidate[0] < value - 1e-11 * max(1.0, abs(value)) and halvings < 30:
            step /= 2
            candidate = _penalised(likelihood, beta + step)
            halvings += 1
        if candidate[0] < value - 1e-11 * max(1.0, abs(value)):
            return beta, value, imat, False
        beta = beta + step
        value, score, imat = candidate
        if (
            float(np.max(np.abs(step), initial=0.0)) < 1e-10
            and float(np.max(np.abs(score[free]), initial=0.0)) < 1e-8
        ):
            return beta, value, imat, True
    return beta, value, imat, False


def firth_cox_fit(
    times: np.ndarray,
    events: np.ndarray,
    x: np.ndarray,
    strata: np.ndarray | None = None,
    conf_level: float = 0.95,
) -> FirthCoxFit:
    stop = np.asarray(times, float)
    e = np.asarray(events, bool)
    xs = np.asarray(x, float).reshape(len(stop), -1)
    xc = xs - xs.mean(axis=0)  # centring changes nothing but the roundoff
    s = np.zeros(len(stop), int) if strata is None else np.asarray(strata, int)
    likelihood = _Breslow(stop, e, xc, s)

    p = xc.shape[1]
    every = np.arange(p)
    beta, best, imat, converged = _maximise(likelihood, np.zeros(p), every)
    null = _penalised(likelihood, np.zeros(p))[0]
    var = np.linalg.inv(imat)
    critical = float(stats.chi2.isf(1 - conf_level, 1))
    lower, upper, p_values = np.empty(p), np.empty(p), np.empty(p)
    for j in range(p):
        others = np.array([i for i in every if i != j], dtype=int)

        def profile(b: float, j: int = j, others: np.ndarray = others) -> float:
            start = beta.copy()
            start[j] = b
            return _maximise(likelihood, start, others)[1]

        p_values[j] = float(stats.chi2.sf(max(0.0, 2 * (best - profile(0.0))), 1))
        se = math.sqrt(var[j, j])

        def excess(b: float, profile: Callable[[float], float] = profile) -> float:
            return 2 * (best - profile(b)) - critical

        bounds = []
        for direction in (-1, 1):
            near, far = beta[j], beta[j] + direction * 2 * se
            while excess(far) < 0 and abs(far - beta[j]) < 100:
                near, far = far, beta[j] + 2 * (far - beta[j])
            bounds.append(float(optimize.brentq(excess, min(near, far), max(near, far), xtol=1e-10)))
        lower[j], upper[j] = math.exp(bounds[0]), math.exp(bounds[1])
    return FirthCoxFit(
        coef=beta,
        var=var,
        penalised_loglik_null=null,
        penalised_loglik=best,
        ci_lower=lower,
        ci_upper=upper,
        p=p_values,
        converged=converged,
        n=len(e),
        events=int(e.sum()),
    )
