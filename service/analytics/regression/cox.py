"""Cox proportional hazards (pure, no I/O), as R `survival::coxph(ties = "efron")` and `cox.zph`.

- Efron's approximation for tied event times; Newton–Raphson from beta = 0 with step halving,
  iterated to full convergence (|Δ log-likelihood| < 1e-12 relative): R stops at 1e-9 by default,
  so the fixtures are produced with `coxph.control(eps = 1e-12)`.
- Tests of beta = 0: Wald (the final beta and variance), likelihood ratio (2·Δ loglik) and score
  (the first Newton step's U'I⁻¹U at beta = 0), as `summary(coxph)`; hazard ratios with Wald
  intervals exp(beta ± z·se).
- Strata: each stratum has its own baseline hazard (risk sets never cross strata).
- Proportional hazards: the score test of adding g(t)·x for each covariate, with g the
  Kaplan–Meier transform 1 − S(t−) centred on the events (R ≥ 3.0 `cox.zph(transform = "km")`),
  per covariate and global."""

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.analytics.lazy_scipy import stats

MAX_ITER = 50
Ties = Literal["efron", "breslow"]
ROUNDING = 1e-11  # relative size of a log-likelihood change that is only rounding


@dataclass(frozen=True)
class CoxFit:
    coef: np.ndarray
    var: np.ndarray
    loglik_null: float
    loglik: float
    score: float  # score test statistic at beta = 0
    iterations: int
    converged: bool
    n: int
    events: int

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))

    @property
    def df(self) -> int:
        return len(self.coef)

    @property
    def wald(self) -> float:
        return float(self.coef @ np.linalg.solve(self.var, self.coef))

    @property
    def likelihood_ratio(self) -> float:
        return 2 * (self.loglik - self.loglik_null)

    def p(self, statistic: float) -> float:
        return float(stats.chi2.sf(statistic, self.df))

    def hazard_ratio_interval(self, conf_level: float) -> tuple[np.ndarray, np.ndarray]:
        z = float(stats.norm.isf((1 - conf_level) / 2))
        return np.exp(self.coef - z * self.se), np.exp(self.coef + z * self.se)


def _prepare(
    times: np.ndarray, events: np.ndarray, x: np.ndarray, strata: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(times, float)
    e = np.asarray(events, bool)
    x = np.asarray(x, float).reshape(len(t), -1)
    s = np.zeros(len(t), int) if strata is None else np.asarray(strata, int)
    order = np.lexsort((-t, s))  # by stratum, then time descending (risk sets accumulate)
    # centring X changes nothing but the roundoff (R centres too)
    return t[order], e[order], x[order] - x.mean(axis=0), s[order], order


def _tied_blocks(t: np.ndarray, s: np.ndarray) -> Iterator[tuple[slice, bool]]:
    """The runs of equal time within a stratum, in the prepared order (risk sets grow along it),
    and whether each run starts a new stratum (the sums start again there)."""
    n = len(t)
    i = 0
    stratum = None
    while i < n:
        starts = s[i] != stratum
        stratum = s[i]
        j = i
        while j < n and t[j] == t[i] and s[j] == stratum:
            j += 1
        yield slice(i, j), starts
        i = j


def _efron(
    beta: np.ndarray, t: np.ndarray, e: np.ndarray, x: np.ndarray, s: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score and information at beta (Efron ties)."""
    p = x.shape[1]
    eta = x @ beta
    risk = np.exp(eta)
    loglik = 0.0
    u = np.zeros(p)
    imat = np.zeros((p, p))
    denom, a, cmat = 0.0, np.zeros(p), np.zeros((p, p))
    for block, starts in _tied_blocks(t, s):
        if starts:
            denom, a, cmat = 0.0, np.zeros(p), np.zeros((p, p))
        r, xb, dead = risk[block], x[block], e[block]
        denom += r.sum()
        a += r @ xb
        cmat += (xb * r[:, None]).T @ xb
        nd = int(dead.sum())
        if nd:
            rd, xd = r[dead], xb[dead]
            denom2 = rd.sum()
            a2 = rd @ xd
            cmat2 = (xd * rd[:, None]).T @ xd
            loglik += eta[block][dead].sum()
            u += xd.sum(axis=0)
            for k in range(nd):
                frac = k / nd
                d = denom - frac * denom2
                mean = (a - frac * a2) / d
                loglik -= math.log(d)
                u -= mean
                imat += (cmat - frac * cmat2) / d - np.outer(mean, mean)
    return loglik, u, imat


def _at_or_after(keys: np.ndarray, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Sum of `values` over the rows whose key is >= each of `times`."""
    order = np.argsort(keys, kind="stable")
    suffix = np.concatenate((np.cumsum(values[order][::-1], axis=0)[::-1], np.zeros((1, *values.shape[1:]))))
    return suffix[np.searchsorted(keys[order], times, side="left")]


def _intervals(
    beta: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    e: np.ndarray,
    x: np.ndarray,
    s: np.ndarray,
    ties: Ties,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score and information at beta for counting-process data: a row is
    at risk at an event time t when start < t <= stop (R's Surv(start, stop, event), agfit). The
    risk-set sums at t are the sums over rows with stop >= t less those over rows with start >= t
    (such a row has stop > start >= t), both suffix sums over the rows sorted by that time: no
    loop over rows, so a fit of 100,000 patients' intervals is a few array passes per step."""
    p = x.shape[1]
    eta = x @ beta
    risk = np.exp(eta)
    loglik = 0.0
    u = np.zeros(p)
    imat = np.zeros((p, p))
    for stratum in np.unique(s):
        rows = s == stratum
        r, xs, e_s, t0, t1 = risk[rows], x[rows], e[rows], start[rows], stop[rows]
        times = np.unique(t1[e_s])
        if not len(times):
            continue
        moments = (r, r[:, None] * xs, r[:, None, None] * xs[:, :, None] * xs[:, None, :])

        risk0, risk1, risk2 = (_at_or_after(t1, m, times) - _at_or_after(t0, m, times) for m in moments)
        # the deaths at each event time, and their sums
        which = np.searchsorted(times, t1[e_s])
        dead = np.bincount(which, minlength=len(times))
        dead0 = np.bincount(which, weights=r[e_s], minlength=len(times))
        dead1 = np.zeros((len(times), p))
        np.add.at(dead1, which, moments[1][e_s])
        dead2 = np.zeros((len(times), p, p))
        np.add.at(dead2, which, moments[2][e_s])
        loglik += float(eta[rows][e_s].sum())
        u += xs[e_s].sum(axis=0)
        # Efron: the m-th of d tied deaths sees the risk set less m/d of the dying (Breslow: 0)
        k = np.repeat(np.arange(len(times)), dead)
        frac = (np.arange(len(k)) - np.repeat(np.cumsum(dead) - dead, dead)) / dead[k]
        if ties == "breslow":
            frac = np.zeros(len(k))
        d0 = risk0[k] - frac * dead0[k]
        d1 = risk1[k] - frac[:, None] * dead1[k]
        d2 = risk2[k] - frac[:, None, None] * dead2[k]
        mean = d1 / d0[:, None]
        loglik -= float(np.log(d0).sum())
        u -= mean.sum(axis=0)
        imat += (d2 / d0[:, None, None] - mean[:, :, None] * mean[:, None, :]).sum(axis=0)
    return loglik, u, imat


Likelihood = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


def _or_nothing(likelihood: Likelihood, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The likelihood, with a log-likelihood of -inf where beta is so large that the sums overflow
    (a step that far is then halved back, as any step that lowers the likelihood)."""
    with np.errstate(all="ignore"):
        try:
            result = likelihood(beta)
        except (ValueError, OverflowError):  # log of a risk sum that overflowed or cancelled
            return -math.inf, np.full(len(beta), np.nan), np.full((len(beta), len(beta)), np.nan)
    if not (math.isfinite(result[0]) and np.all(np.isfinite(result[1])) and np.all(np.isfinite(result[2]))):
        return -math.inf, result[1], result[2]
    return result


def cox_fit(
    times: np.ndarray,
    events: np.ndarray,
    x: np.ndarray,
    strata: np.ndarray | None = None,
    start: np.ndarray | None = None,
    ties: Ties = "efron",
) -> CoxFit:
    """Raises LinAlgError where the information at beta = 0 is singular; `converged` is False
    where the likelihood has no finite maximum (a coefficient runs off to infinity). With
    `start`, the rows are counting-process intervals (start, times] (time-varying covariates,
    delayed entry), as R coxph(Surv(start, stop, event) ~ ...)."""
    if start is None and ties == "efron":
        t, e, xc, s, _ = _prepare(times, events, x, strata)

        def likelihood(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            return _efron(beta, t, e, xc, s)

    else:
        stop = np.asarray(times, float)
        e = np.asarray(events, bool)
        entry = np.full(len(stop), -np.inf) if start is None else np.asarray(start, float)
        xs = np.asarray(x, float).reshape(len(stop), -1)
        xc = xs - xs.mean(axis=0)
        s = np.zeros(len(stop), int) if strata is None else np.asarray(strata, int)

        def likelihood(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            return _intervals(beta, entry, stop, e, xc, s, ties)

    beta = np.zeros(xc.shape[1])
    loglik0, u0, i0 = likelihood(beta)
    score = float(u0 @ np.linalg.lstsq(i0, u0, rcond=None)[0])
    loglik, u, imat = loglik0, u0, i0
    converged = False
    iterations = 0
    while iterations < MAX_ITER:
        iterations += 1
        try:
            step = np.linalg.solve(imat, u)
        except np.linalg.LinAlgError:
            break  # the information vanishes as a coefficient runs off to infinity
        if not np.all(np.isfinite(step)):
            break
        candidate = beta + step
        new = _or_nothing(likelihood, candidate)
        halvings = 0
        # R halves the step when the likelihood falls. Near the maximum a Newton step changes the
        # log-likelihood by less than its rounding, so only a fall beyond rounding counts: halving
        # on noise would stop short of the maximum.
        while (
            not math.isfinite(new[0]) or new[0] < loglik - ROUNDING * max(1.0, abs(loglik))
        ) and halvings < 30:
            step /= 2
            candidate = beta + step
            new = _or_nothing(likelihood, candidate)
            halvings += 1
        if not math.isfinite(new[0]) or new[0] < loglik - ROUNDING * max(1.0, abs(loglik)):
            break  # no step along Newton's direction raises the likelihood: no finite maximum found
        # converged on a full Newton step only: a step halved to nothing proves nothing
        done = halvings == 0 and abs(new[0] - loglik) <= 1e-12 * abs(new[0]) and np.max(np.abs(step)) < 1e-10
        beta, (loglik, u, imat) = candidate, new
        if done:
            converged = True
            break
    return CoxFit(
        beta,
        np.linalg.inv(imat) if converged else np.linalg.pinv(imat),
        loglik0,
        loglik,
        score,
        iterations,
        converged,
        len(e),
        int(e.sum()),
    )


@dataclass(frozen=True)
class ZphTest:
    chi_square: np.ndarray  # per covariate, then the global test last
    df: np.ndarray
    p_value: np.ndarray


def cox_zph(
    fit: CoxFit,
    times: np.ndarray,
    events: np.ndarray,
    x: np.ndarray,
    strata: np.ndarray | None = None,
    terms: Sequence[Sequence[int]] | None = None,
) -> ZphTest | None:
    """R `cox.zph(fit, transform = "km")` for a fit without penalties; None where its information
    matrix is singular (one event time, every event tied), where R stops with an error. `terms`
    groups the columns as R's default `terms = TRUE` does: one joint test per factor (its columns
    together, df = their number); default one term per column."""
    t0 = np.asarray(times, float)
    e0 = np.asarray(events, bool)
    # 1 − S(t−) of the Kaplan–Meier of all patients (strata ignored, as R)
    unique = np.unique(t0)
    n_risk = np.array([np.count_nonzero(t0 >= u) for u in unique], float)
    n_event = np.array([np.count_nonzero((t0 == u) & e0) for u in unique], float)
    surv = np.cumprod(1 - n_event / n_risk)
    left = np.concatenate(([1.0], surv))[np.searchsorted(unique, t0, side="left")]
    g0 = 1 - left
    g0 = g0 - g0[e0].mean()
    t, e, xc, s, order = _prepare(times, events, x, strata)
    g = g0[order]
    p = xc.shape[1]
    beta = fit.coef
    risk = np.exp(xc @ beta)
    u = np.zeros(2 * p)
    imat = np.zeros((2 * p, 2 * p))
    denom, a, cmat = 0.0, np.zeros(p), np.zeros((p, p))
    for block, starts in _tied_blocks(t, s):
        if starts:
            denom, a, cmat = 0.0, np.zeros(p), np.zeros((p, p))
        r, xb, dead = risk[block], xc[block], e[block]
        alive = ~dead
        denom += r[alive].sum()
        a += r[alive] @ xb[alive]
        cmat += (xb[alive] * r[alive][:, None]).T @ xb[alive]
        nd = int(dead.sum())
        if nd:
            wt = g[block.start]
            rd, xd = r[dead], xb[dead]
            u[:p] += xd.sum(axis=0)
            u[p:] += wt * xd.sum(axis=0)
            denom2, a2, cmat2 = rd.sum(), rd @ xd, (xd * rd[:, None]).T @ xd
            for _ in range(nd):
                denom += denom2 / nd
                a += a2 / nd
                cmat += cmat2 / nd
                mean = a / denom
                u[:p] -= mean
                u[p:] -= wt * mean
                block_info = cmat / denom - np.outer(mean, a) / denom
                imat[:p, :p] += block_info
                imat[:p, p:] += wt * block_info
                imat[p:, p:] += wt * wt * block_info
    imat[p:, :p] = imat[:p, p:].T
    tests, dfs = [], []
    try:
        for columns in terms if terms is not None else [[k] for k in range(p)]:
            keep = [*range(p), *(p + k for k in columns)]
            vector = np.zeros(len(keep))
            vector[p:] = u[[p + k for k in columns]]
            tests.append(float(vector @ _solve(imat[np.ix_(keep, keep)], vector)))
            dfs.append(len(columns))
        vector = np.concatenate((np.zeros(p), u[p:]))
        tests.append(float(vector @ _solve(imat, vector)))
        dfs.append(p)
    except np.linalg.LinAlgError:
        return None
    chi = np.array(tests)
    df = np.array(dfs)
    return ZphTest(chi, df, np.asarray(stats.chi2.sf(chi, df), float))


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """R's `solve`: an error (here LinAlgError) when the matrix is singular to machine precision."""
    with np.errstate(divide="ignore"):
        rcond = 1 / np.linalg.cond(a, 1) if np.any(a) else 0.0
    if not np.isfinite(rcond) or rcond < np.finfo(float).eps:
        raise np.linalg.LinAlgError("singular matrix")
    return np.linalg.solve(a, b)
