"""Fine–Gray regression of the subdistribution hazard of one cause (pure, no I/O), as R
`cmprsk::crr` (Fine & Gray 1999), written from the paper's estimating equations.

Patients who failed from a competing cause stay in the risk set after their failure, weighted by
the probability of remaining uncensored since: at a failure time t of the cause of interest the
risk set holds every patient still followed (T ≥ t, weight 1) and every earlier competing failure
j (weight G(t−)/G(T_j−)), G the Kaplan–Meier estimate of the censoring distribution (all patients,
censoring as the event), read just before each time. Because the weights factor, every risk-set
sum is a running sum, so a fit is O(n) per Newton step whatever the number of failures.

- Breslow's handling of ties (each tied failure its own term), as crr.
- Newton–Raphson from beta = 0 to |step| < 1e-12.
- Variance: the robust sandwich Ω⁻¹ Σ Ω⁻¹ of Fine & Gray (1999, section 3), Σ = Σᵢ (ηᵢ + ψᵢ)⊗²,
  where ηᵢ is patient i's weighted score residual and ψᵢ the term from estimating G."""

import math
from dataclasses import dataclass

import numpy as np

MAX_ITER = 100


@dataclass(frozen=True)
class FineGrayFit:
    coef: np.ndarray
    var: np.ndarray  # robust (sandwich), as crr's `var`
    information: np.ndarray
    loglik: float
    loglik_null: float
    iterations: int
    converged: bool

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))


@dataclass(frozen=True)
class _Data:
    time: np.ndarray  # sorted ascending
    cause: np.ndarray  # 1: cause of interest, 2: competing, 0: censored
    x: np.ndarray
    g: np.ndarray  # G(T_i-) per patient
    fail: np.ndarray  # indices of the failures of interest
    competing: np.ndarray  # indices of competing failures
    first_at_or_after: np.ndarray  # per failure: the first index with time >= its time


def _censoring_left_limits(time: np.ndarray, cause: np.ndarray) -> np.ndarray:
    """G(T_i−): the Kaplan–Meier estimate of remaining uncensored, just before each time."""
    unique, first = np.unique(time, return_index=True)
    at_risk = len(time) - first
    censored = np.bincount(np.searchsorted(unique, time[cause == 0]), minlength=len(unique))
    g_after = np.cumprod(1.0 - censored / at_risk)
    g_before = np.concatenate(([1.0], g_after[:-1]))
    return g_before[np.searchsorted(unique, time)]


def _prepare(time: np.ndarray, cause: np.ndarray, x: np.ndarray) -> _Data:
    order = np.argsort(time, kind="stable")
    t, c = np.asarray(time, float)[order], np.asarray(cause, int)[order]
    xs = np.asarray(x, float).reshape(len(t), -1)[order]
    fail = np.flatnonzero(c == 1)
    return _Data(
        t,
        c,
        xs,
        _censoring_left_limits(t, c),
        fail,
        np.flatnonzero(c == 2),
        np.searchsorted(t, t[fail], side="left"),
    )


def _risk_sums(d: _Data, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At each failure of interest: S0, S1, S2 over its weighted risk set, and r = exp(x·beta)."""
    r = np.exp(d.x @ beta)
    p = d.x.shape[1]
    # still followed: suffix sums from each index
    a0 = np.cumsum(r[::-1])[::-1]
    a1 = np.cumsum((r[:, None] * d.x)[::-1], axis=0)[::-1]
    a2 = np.cumsum((r[:, None, None] * d.x[:, :, None] * d.x[:, None, :])[::-1], axis=0)[::-1]
    # earlier competing failures, weighted by 1/G(T_j-): prefix sums up to (not including) an index
    w = np.where(d.cause == 2, r / d.g, 0.0)
    b0 = np.concatenate(([0.0], np.cumsum(w)))
    b1 = np.vstack((np.zeros(p), np.cumsum(w[:, None] * d.x, axis=0)))
    b2 = np.concatenate(
        (np.zeros((1, p, p)), np.cumsum(w[:, None, None] * d.x[:, :, None] * d.x[:, None, :], axis=0))
    )
    k = d.first_at_or_after
    g = d.g[d.fail]
    s0 = a0[k] + g * b0[k]
    s1 = a1[k] + g[:, None] * b1[k]
    s2 = a2[k] + g[:, None, None] * b2[k]
    return s0, s1, s2, r


def _likelihood(d: _Data, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    s0, s1, s2, _ = _risk_sums(d, beta)
    mean = s1 / s0[:, None]
    loglik = float(np.sum(d.x[d.fail] @ beta) - np.sum(np.log(s0)))
    score = (d.x[d.fail] - mean).sum(axis=0)
    info = (s2 / s0[:, None, None] - mean[:, :, None] * mean[:, None, :]).sum(axis=0)
    return loglik, score, info


def _sandwich(d: _Data, beta: np.ndarray, info: np.ndarray) -> np.ndarray:
    s0, s1, _, r = _risk_sums(d, beta)
    n, p = d.x.shape
    mean = s1 / s0[:, None]
    t_fail = d.time[d.fail]
    g_fail = d.g[d.fail]
    # eta_i: the failure's own term, minus the compensator over the failures i is at risk for
    eta = np.zeros((n, p))
    eta[d.fail] += d.x[d.fail] - mean
    # failures j with T_j <= T_i (weight 1): cumulative sums over failures in time order
    c0 = np.cumsum(1.0 / s0)
    c1 = np.cumsum(mean / s0[:, None], axis=0)
    upto = np.searchsorted(t_fail, d.time, side="right")  # failures with T_j <= T_i
    has = upto > 0
    eta[has] -= r[has, None] * (d.x[has] * c0[upto[has] - 1, None] - c1[upto[has] - 1])
    # competing failures i at risk for later failures (T_j > T_i), weight G(T_j-)/G(T_i-)
    d0 = np.concatenate((np.cumsum((g_fail / s0)[::-1])[::-1], [0.0]))
    d1 = np.vstack((np.cumsum((g_fail[:, None] * mean / s0[:, None])[::-1], axis=0)[::-1], np.zeros(p)))
    ci = d.competing
    later = upto[ci]
    eta[ci] -= (r[ci] / d.g[ci])[:, None] * (d.x[ci] * d0[later, None] - d1[later])
    # q(u) at each distinct time u: sum over failures at or after u of G(T_j-)/S0_j times the
    # earlier competing failures' weighted deviations from the failure's risk-set mean
    unique, first = np.unique(d.time, return_index=True)
    w = np.where(d.cause == 2, r / d.g, 0.0)
    e4 = np.concatenate(([0.0], np.cumsum(w)))[first]  # competing failures with T_j < u
    e3 = np.vstack((np.zeros(p), np.cumsum(w[:, None] * d.x, axis=0)))[first]
    from_u = np.searchsorted(t_fail, unique, side="left")  # failures with T_j >= u
    h0 = np.concatenate((np.cumsum((g_fail / s0)[::-1])[::-1], [0.0]))[from_u]
    h1 = np.vstack((np.cumsum((g_fail[:, None] * mean / s0[:, None])[::-1], axis=0)[::-1], np.zeros(p)))[
        from_u
    ]
    q = e3 * h0[:, None] - e4[:, None] * h1
    # psi_i = q(T_i)/pi(T_i) if censored, minus the sum of q(u) dNc(u)/pi(u)^2 over censoring times u <= T_i
    pi = (n - first).astype(float)
    censored = np.bincount(np.searchsorted(unique, d.time[d.cause == 0]), minlength=len(unique))
    compensator = np.cumsum(q * (censored / pi**2)[:, None], axis=0)
    at = np.searchsorted(unique, d.time)
    psi = -compensator[at]
    cens = d.cause == 0
    psi[cens] += q[at[cens]] / pi[at[cens], None]
    total = eta + psi
    inverse = np.linalg.inv(info)
    return inverse @ (total.T @ total) @ inverse  # type: ignore[no-any-return]


def fine_gray(time: np.ndarray, cause: np.ndarray, x: np.ndarray) -> FineGrayFit:
    """cause: 1 the failure of interest, 2 a competing failure, 0 censored. Raises LinAlgError
    where the information is singular; `converged` is False where no finite maximum is found."""
    d = _prepare(time, cause, x)
    beta = np.zeros(d.x.shape[1])
    loglik0, score, info = _likelihood(d, beta)
    loglik = loglik0
    converged = False
    iterations = 0
    while iterations < MAX_ITER:
        iterations += 1
        step = np.linalg.solve(info, score)
        candidate = beta + step
        new = _likelihood(d, candidate)
        halvings = 0
        while (not math.isfinite(new[0]) or new[0] < loglik - 1e-11 * abs(loglik)) and halvings < 30:
            step /= 2
            candidate = beta + step
            new = _likelihood(d, candidate)
            halvings += 1
        beta, (loglik, score, info) = candidate, new
        if halvings == 0 and float(np.max(np.abs(step))) < 1e-12:
            converged = True
            break
    return FineGrayFit(beta, _sandwich(d, beta, info), info, loglik, loglik0, iterations, converged)
