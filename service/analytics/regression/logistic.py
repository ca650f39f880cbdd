"""Logistic regression (pure, no I/O): maximum likelihood as R `glm(family = binomial)`, Firth's
penalised likelihood as R `logistf` (Heinze & Schemper 2002), separation detected beforehand.

- Maximum likelihood: Newton–Raphson (= IRLS) from beta = 0, to |Δ deviance| < 1e-13 relative;
  Wald standard errors from the inverse information, z tests, deviance, null deviance, AIC.
- Separation: when some direction beta ≠ 0 has (2y − 1)·x·beta ≥ 0 for every patient (complete
  or quasi-complete separation, e.g. every patient of one group responded), the likelihood has no
  finite maximum and R's glm returns huge coefficients with a warning. It is detected exactly, by
  the linear programme of Konis (2007) (scipy's HiGHS), not from the iterations.
- Firth: Newton on the modified score U*(beta) = X'(y − p + h(1/2 − p)), h the diagonal of the
  hat matrix W^½X(X'WX)⁻¹X'W^½, with step halving on the penalised log-likelihood
  l(beta) + ½·log|X'WX|, which always has a finite maximum. As logistf: standard errors from
  (X'WX)⁻¹ at the estimate, p values from the penalised likelihood-ratio test of each coefficient
  (beta_j = 0, the others refitted), intervals from the profile penalised likelihood."""

import math
from dataclasses import dataclass

import numpy as np

from service.analytics.lazy_scipy import optimize, stats

MAX_ITER = 100
TOLERANCE = 1e-13


@dataclass(frozen=True)
class LogisticFit:
    coef: np.ndarray
    var: np.ndarray
    loglik: float  # the log-likelihood (Firth: unpenalised, at the penalised estimate)
    penalised_loglik: float | None  # Firth only
    null_loglik: float  # intercept only (Firth: its penalised maximum)
    iterations: int
    converged: bool
    firth: bool

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))


def _probabilities(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ beta)))  # type: ignore[no-any-return]


def _loglik(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    eta = x @ beta
    # log p = -log(1+e^-eta), log(1-p) = -log(1+e^eta), without overflow
    return float(np.sum(y * -np.logaddexp(0, -eta) + (1 - y) * -np.logaddexp(0, eta)))


def _information(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    w = p * (1 - p)
    return (x * w[:, None]).T @ x  # type: ignore[no-any-return]


def _penalised(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(_information(x, _probabilities(x, beta)))
    return _loglik(x, y, beta) + 0.5 * logdet if sign > 0 else -math.inf


def separated(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether the responses are (quasi-)completely separated by the columns of x (Konis 2007):
    the LP max Σ(2y−1)·x·b subject to (2y−1)·x·b ≥ 0, −1 ≤ b ≤ 1 has a positive optimum."""
    signed = x * (2 * y - 1)[:, None]
    result = optimize.linprog(
        -signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(len(y)),
        bounds=[(-1, 1)] * x.shape[1],
        method="highs",
    )
    optimum = -float(result.fun) if result.status == 0 and result.fun is not None else 0.0
    return optimum > 1e-7 * max(1.0, float(np.abs(signed).sum()))


def _newton(
    x: np.ndarray, y: np.ndarray, firth: bool, free: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, int, bool]:
    """Maximise the (penalised) log-likelihood over the coordinates `free`, the others fixed."""

    def objective(b: np.ndarray) -> float:
        return _penalised(x, y, b) if firth else _loglik(x, y, b)

    beta = start.copy()
    current = objective(beta)
    for iteration in range(1, MAX_ITER + 1):
        p = _probabilities(x, beta)
        info = _information(x, p)
        residual = y - p
        if firth:
            w_half = np.sqrt(p * (1 - p))
            xw = x * w_half[:, None]
            h = np.einsum("ij,ij->i", xw @ np.linalg.inv(info), xw)
            residual = residual + h * (0.5 - p)
        score = x.T @ residual
        step = np.zeros_like(beta)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        # logistf caps a step at 5 on any coefficient (maxstep): steps this large only happen
        # far from the maximum, and halving below finds the ascent.
        step *= min(1.0, 5.0 / max(float(np.abs(step).max()), 1e-300))
        for _ in range(60):
            candidate = beta + step
            value = objective(candidate)
            if value >= current - 1e-12 * abs(current):
                break
            step /= 2
        change = abs(value - current)
        beta, current = candidate, value
        if change <= TOLERANCE * (abs(current) + 1e-3) and float(np.abs(step).max()) < 1e-9:
            return beta, iteration, True
    return beta, MAX_ITER, False


def logistic_fit(x: np.ndarray, y: np.ndarray, firth: bool = False) -> LogisticFit:
    """x: design with the intercept as its first column; y: 0/1."""
    free = np.arange(x.shape[1])
    beta, iterations, converged = _newton(x, y, firth, free, np.zeros(x.shape[1]))
    var = np.linalg.inv(_information(x, _probabilities(x, beta)))
    intercept_only = x[:, :1]
    b0, _, _ = _newton(intercept_only, y, firth, np.arange(1), np.zeros(1))
    null = _penalised(intercept_only, y, b0) if firth else _loglik(intercept_only, y, b0)
    return LogisticFit(
        coef=beta,
        var=var,
        loglik=_loglik(x, y, beta),
        penalised_loglik=_penalised(x, y, beta) if firth else None,
        null_loglik=null,
        iterations=iterations,
        converged=converged,
        firth=firth,
    )


def _profile(x: np.ndarray, y: np.ndarray, fit: LogisticFit, j: int, value: float) -> float:
    """The penalised log-likelihood maximised over every coefficient but the j-th, fixed at value."""
    start = fit.coef.copy()
    start[j] = value
    free = np.array([k for k in range(x.shape[1]) if k != j], int)
    beta, _, _ = _newton(x, y, True, free, start)
    return _penalised(x, y, beta)


def firth_likelihood_ratio(x: np.ndarray, y: np.ndarray, fit: LogisticFit, j: int) -> float:
    """Penalised likelihood-ratio statistic of beta_j = 0 (logistf's p values, 1 df)."""
    assert fit.penalised_loglik is not None
    return max(0.0, 2 * (fit.penalised_loglik - _profile(x, y, fit, j, 0.0)))


def firth_profile_interval(
    x: np.ndarray, y: np.ndarray, fit: LogisticFit, j: int, conf_level: float
) -> tuple[float | None, float | None]:
    """Profile penalised-likelihood interval of beta_j (logistf's default); None where the
    profile does not fall far enough within 50 units of the estimate."""
    assert fit.penalised_loglik is not None
    target = fit.penalised_loglik - stats.chi2.ppf(conf_level, 1) / 2
    centre = float(fit.coef[j])

    def gap(value: float) -> float:
        return _profile(x, y, fit, j, value) - target

    bounds: list[float | None] = []
    for direction in (-1.0, 1.0):
        step = max(1.0, 2 * float(fit.se[j]))
        far = centre + direction * step
        while gap(far) > 0 and abs(far - centre) < 50:
            step *= 2
            far = centre + direction * step
        if gap(far) > 0:
            bounds.append(None)
            continue
        lo, hi = sorted((centre, far))
        bounds.append(float(optimize.brentq(gap, lo, hi, xtol=1e-12, rtol=1e-14)))
    return bounds[0], bounds[1]
