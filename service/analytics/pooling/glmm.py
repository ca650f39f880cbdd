"""Random-effects pooling of proportions by a binomial-normal generalised linear mixed model
(pure, no I/O), as R `metafor::rma.glmm(measure = "PLO")` with its defaults.

Why a second model beside the inverse-variance one in `meta`: case series are small and often
0/n or n/n, where the normal approximation of a logit needs a continuity correction that moves the
estimate. The GLMM uses each study's binomial likelihood as it is, with no correction:
logit(p_i) = mu + u_i, u_i ~ N(0, tau²), mu and tau fitted by maximum likelihood, the integral
over u_i by 7-point adaptive Gauss–Hermite quadrature (centred at each study's conditional mode and
scaled by its curvature) — lme4's `glmer(nAGQ = 7)`, which metafor calls. The standard error of mu
comes from the observed information of the deviance in (tau, mu), as lme4's `vcov`."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from service.analytics.lazy_scipy import optimize, special, stats

NODES = 7  # metafor's default nAGQ
_Z, _W = hermegauss(NODES)
_W = _W / math.sqrt(2 * math.pi)  # weights of the standard normal density
_LOG_PHI_Z = -0.5 * _Z**2 - 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class GlmmFit:
    """On the log-odds scale; `tau2` the between-study variance, `i2` in percent as metafor."""

    mu: float
    se: float
    tau2: float
    loglik: float
    fixed: float
    fixed_se: float
    lrt: float  # heterogeneity: saturated vs equal-effects model (metafor's QE.LRT), k - 1 df
    df: int
    i2: float


def _binomial_loglik(x: np.ndarray, n: np.ndarray, eta: np.ndarray) -> np.ndarray:
    # log C(n, x) + x·log p + (n − x)·log(1 − p), stable for large |eta|
    return np.asarray(
        special.gammaln(n + 1)
        - special.gammaln(x + 1)
        - special.gammaln(n - x + 1)
        - x * np.logaddexp(0, -eta)
        - (n - x) * np.logaddexp(0, eta)
    )


def _modes(x: np.ndarray, n: np.ndarray, mu: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Each study's conditional mode of u (on the standard-normal scale, b = tau·u) and the
    curvature there, by Newton's method (the log integrand is strictly concave)."""
    u = np.zeros_like(x)
    for _ in range(100):
        p = special.expit(mu + tau * u)
        gradient = tau * (x - n * p) - u
        curvature = tau**2 * n * p * (1 - p) + 1
        step = gradient / curvature
        u = u + step
        if np.max(np.abs(step)) < 1e-12:
            break
    p = special.expit(mu + tau * u)
    return u, tau**2 * n * p * (1 - p) + 1


def loglik(x: np.ndarray, n: np.ndarray, mu: float, tau: float) -> float:
    """The marginal log-likelihood by adaptive Gauss–Hermite quadrature (even in tau)."""
    tau = abs(tau)
    mode, curvature = _modes(x, n, mu, tau)
    scale = 1 / np.sqrt(curvature)
    u = mode[:, None] + scale[:, None] * _Z[None, :]
    log_terms = (
        _binomial_loglik(x[:, None], n[:, None], mu + tau * u)
        - 0.5 * u**2
        - 0.5 * math.log(2 * math.pi)
        - _LOG_PHI_Z[None, :]
        + np.log(_W)[None, :]
    )
    return float(np.sum(np.log(scale) + special.logsumexp(log_terms, axis=1)))


def _hessian(function: Callable[[np.ndarray], float], at: np.ndarray, step: float = 1e-4) -> np.ndarray:
    size = len(at)
    h = np.zeros((size, size))
    centre = function(at)
    for i in range(size):
        e_i = np.eye(size)[i] * step
        h[i, i] = (function(at + e_i) - 2 * centre + function(at - e_i)) / step**2
        for j in range(i):
            e_j = np.eye(size)[j] * step
            h[i, j] = h[j, i] = (
                function(at + e_i + e_j)
                - function(at + e_i - e_j)
                - function(at - e_i + e_j)
                + function(at - e_i - e_j)
            ) / (4 * step**2)
    return h


def not_computable(events: list[int], totals: list[int]) -> str | None:
    """Why the model has no finite estimate, or None."""
    if sum(events) == 0:
        return "no study has an event: the pooled log odds is −∞ (the proportion's lower limit cannot be estimated)"
    if sum(events) == sum(totals):
        return "every patient of every study had the event: the pooled log odds is +∞"
    return None


def fit(events: list[int], totals: list[int]) -> GlmmFit:
    """The binomial-normal model of studies with patients (at least one event and one non-event
    in all: see `not_computable`)."""
    x, n = np.array(events, dtype=float), np.array(totals, dtype=float)
    k = len(x)
    fixed = float(special.logit(x.sum() / n.sum()))
    fixed_se = math.sqrt(1 / (n.sum() * special.expit(fixed) * (1 - special.expit(fixed))))

    def deviance(parameters: np.ndarray) -> float:
        return -2 * loglik(x, n, float(parameters[1]), float(parameters[0]))

    # tau ≥ 0 (the likelihood is even in tau); start as lme4 does, at tau = 1 and the pooled log odds.
    best = optimize.minimize(
        deviance,
        np.array([1.0, fixed]),
        method="L-BFGS-B",
        bounds=[(0.0, None), (None, None)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000},
    )

    # Polish: L-BFGS-B stops on the deviance's flat top; Nelder–Mead from there settles the last digits.
    def folded(parameters: np.ndarray) -> float:
        return deviance(np.array([abs(parameters[0]), parameters[1]]))

    polished = optimize.minimize(
        folded,
        best.x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000},
    )
    tau, mu = abs(float(polished.x[0])), float(polished.x[1])
    information = _hessian(deviance, np.array([tau, mu])) / 2
    se = math.sqrt(float(np.linalg.inv(information)[1, 1])) if tau > 0 else math.sqrt(1 / information[1, 1])
    saturated = (
        special.gammaln(n + 1)
        - special.gammaln(x + 1)
        - special.gammaln(n - x + 1)
        + special.xlogy(x, x / n)
        + special.xlogy(n - x, 1 - x / n)
    )
    equal = _binomial_loglik(x, n, np.full(k, fixed))
    return GlmmFit(
        mu=mu,
        se=se,
        tau2=tau**2,
        loglik=-deviance(np.array([tau, mu])) / 2,
        fixed=fixed,
        fixed_se=fixed_se,
        lrt=max(0.0, float(2 * (saturated.sum() - equal.sum()))),
        df=k - 1,
        i2=_i_squared(tau**2, x, n),
    )


def _i_squared(tau2: float, x: np.ndarray, n: np.ndarray) -> float:
    """metafor's I² for rma.glmm: tau² against the typical within-study variance of the escalc
    log odds (0.5 added to both cells of 0/n and n/n studies), in percent."""
    edge = (x == 0) | (x == n)
    a, b = np.where(edge, x + 0.5, x), np.where(edge, n - x + 0.5, n - x)
    w = 1 / (1 / a + 1 / b)
    k = len(x)
    if k < 2:
        return 0.0
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    return float(100 * tau2 / (tau2 + s2))


def p_value(statistic: float, df: int) -> float | None:
    return float(stats.chi2.sf(statistic, df)) if df > 0 else None
