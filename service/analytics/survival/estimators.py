"""Kaplan–Meier estimation and the log-rank test (pure, no I/O), matching R's `survival`.

- Product-limit estimate with Greenwood's variance.
- Pointwise intervals as `survfit(conf.type=...)`: "plain" S ± z·se(S); "log" exp(log S ± z·se);
  "log-log" exp(−exp(log(−log S) ± z·se/log S)), se = √Σ d/(n(n−d)) being the standard error of
  log S. Where R gives NA (log: S = 0; log-log: S ∈ {0, 1}) the bound is None.
- Quantiles (the median) as `quantile.survfit`: the first time the curve reaches 1 − p, except
  that a flat exactly at 1 − p gives the midpoint of the flat; the median's interval applies the
  same rule to the pointwise band.
- Log-rank: Mantel–Haenszel with hypergeometric variance, as `survdiff(rho = 0)`."""

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from service.analytics.lazy_scipy import stats

ConfType = Literal["log-log", "log", "plain"]
TOLERANCE = math.sqrt(np.finfo(float).eps)  # R: sqrt(.Machine$double.eps)


@dataclass(frozen=True)
class KaplanMeier:
    time: np.ndarray  # distinct times (events or censorings), ascending
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    std_err: np.ndarray  # standard error of log S (R's `std.err`); inf once S reaches 0
    lower: np.ndarray  # NaN where undefined
    upper: np.ndarray
    conf_type: ConfType
    conf_level: float
    n: int = field(default=0)

    @property
    def events(self) -> int:
        return int(self.n_event.sum())


def kaplan_meier(
    times: np.ndarray, events: np.ndarray, conf_type: ConfType = "log-log", conf_level: float = 0.95
) -> KaplanMeier:
    times = np.asarray(times, dtype=float)
    events = np.asarray(events, dtype=bool)
    order = np.argsort(times, kind="stable")
    times, events = times[order], events[order]
    unique, first = np.unique(times, return_index=True)
    counts = np.diff(np.append(first, len(times)))
    n_event = np.add.reduceat(events.astype(int), first) if len(times) else np.zeros(0, dtype=int)
    n_censor = counts - n_event
    n_risk = len(times) - first
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        increments = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    std_err = np.sqrt(np.cumsum(increments))
    lower, upper = _confidence_band(surv, std_err, conf_type, conf_level)
    return KaplanMeier(
        unique, n_risk, n_event, n_censor, surv, std_err, lower, upper, conf_type, conf_level, len(times)
    )


def kaplan_meier_intervals(
    start: np.ndarray,
    stop: np.ndarray,
    events: np.ndarray,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> KaplanMeier:
    """The product-limit estimate on counting-process rows (start, stop]: at each stop time the
    rows at risk are those with start < t <= stop, so a row enters late (delayed entry, or a
    patient moving into this curve's state, as Simon–Makuch) — R survfit(Surv(start, stop,
    event) ~ 1). `n_censor` counts the rows that end at t without an event (a patient leaving
    the state ends a row too)."""
    start, stop = np.asarray(start, float), np.asarray(stop, float)
    events = np.asarray(events, bool)
    unique = np.unique(stop)
    entered = np.searchsorted(np.sort(start), unique, side="left")  # rows with start < t
    ended_before = np.searchsorted(np.sort(stop), unique, side="left")  # rows with stop < t
    n_risk = entered - ended_before
    ends = np.searchsorted(unique, stop)
    n_event = np.bincount(ends[events], minlength=len(unique))
    n_censor = np.bincount(ends[~events], minlength=len(unique))
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(n_risk > 0, 1.0 - n_event / n_risk, 1.0))
        increments = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    std_err = np.sqrt(np.cumsum(increments))
    lower, upper = _confidence_band(surv, std_err, conf_type, conf_level)
    return KaplanMeier(
        unique, n_risk, n_event, n_censor, surv, std_err, lower, upper, conf_type, conf_level, len(stop)
    )


def _confidence_band(
    surv: np.ndarray, se: np.ndarray, conf_type: ConfType, conf_level: float
) -> tuple[np.ndarray, np.ndarray]:
    z = float(stats.norm.isf((1 - conf_level) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            half = z * se * surv
            lower = np.maximum(surv - half, 0.0)
            upper = np.minimum(surv + half, 1.0)
            lower = np.where(np.isfinite(half), lower, np.nan)
            upper = np.where(np.isfinite(half), upper, np.nan)
        elif conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lower = np.exp(np.log(xx) - z * se)
            upper = np.minimum(np.exp(np.log(xx) + z * se), 1.0)
        elif conf_type == "log-log":
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            shift = z * se / np.log(xx)
            one = np.exp(-np.exp(np.log(-np.log(xx)) + shift))
            other = np.exp(-np.exp(np.log(-np.log(xx)) - shift))
            lower, upper = np.minimum(one, other), np.maximum(one, other)
        else:
            raise ValueError(f"unknown conf_type {conf_type}")
    return lower, upper


def _findq(x: np.ndarray, y: np.ndarray, p: float) -> float | None:
    """R `survival:::findq`: where the CDF curve y (at times x) reaches p, midpoint on a flat."""
    finite = y[~np.isnan(y)]
    if finite.size == 0 or finite.max() < p:
        return None
    xmax = x[-1]
    # Drop duplicated y values (censorings), the first of each kept, NaN counting as one value
    # (np.unique's sort is stable when asked for indices, so each index is the first).
    _, first = np.unique(y, return_index=True, equal_nan=True)
    keep = np.sort(first)
    x, y = x[keep], y[keep]

    def first_reaching(curve: np.ndarray) -> int | None:
        # approx(curve, 1:n, p, method="constant", f=1) with NA pairs removed: the index of the
        # smallest value at or above p (values are distinct here, so there is one).
        index = np.flatnonzero(~np.isnan(curve))
        values = curve[index]
        if values.size == 0 or p < values.min() or p > values.max():
            return None
        reaching = np.flatnonzero(values >= p)
        return int(index[reaching[np.argmin(values[reaching])]])

    index1, index2 = first_reaching(y + TOLERANCE), first_reaching(y - TOLERANCE)
    quantile = None if index1 is None or index2 is None else (x[index1] + x[index2]) / 2
    if not math.isnan(y[-1]) and abs(p - y[-1]) < TOLERANCE and index1 is not None:
        quantile = (x[index1] + xmax) / 2  # a flat at the end of the curve
    return None if quantile is None else float(quantile)


def quantile(km: KaplanMeier, probability: float = 0.5) -> tuple[float | None, float | None, float | None]:
    """The survival time quantile (0.5 = median) with its interval read from the pointwise band."""
    x = np.concatenate(([0.0], km.time))
    estimate = _findq(x, np.concatenate(([0.0], 1 - km.surv)), probability)
    lower = _findq(x, np.concatenate(([0.0], 1 - km.lower)), probability)
    upper = _findq(x, np.concatenate(([0.0], 1 - km.upper)), probability)
    return estimate, lower, upper


def survival_at(km: KaplanMeier, t: float) -> tuple[float, float | None, float | None] | None:
    """S(t) and its bounds (the step function read at t); None beyond the last time observed."""
    if km.time.size == 0 or t > km.time[-1]:
        return None
    index = int(np.searchsorted(km.time, t, side="right")) - 1
    if index < 0:
        return 1.0, 1.0, 1.0  # before the first time nothing is uncertain: R's summary gives [1, 1]
    lower, upper = km.lower[index], km.upper[index]
    return float(km.surv[index]), _nan_to_none(lower), _nan_to_none(upper)


def survival_se_at(km: KaplanMeier, t: float) -> tuple[float, float] | None:
    """S(t) and its Greenwood standard error S(t)·sqrt(Σ d/(n(n−d))), as R summary(survfit,
    times = t)$std.err; None beyond the last time observed."""
    if km.time.size == 0 or t > km.time[-1]:
        return None
    index = int(np.searchsorted(km.time, t, side="right")) - 1
    if index < 0:
        return 1.0, 0.0
    return float(km.surv[index]), float(km.surv[index] * km.std_err[index])


def milestone_difference(
    a: tuple[float, float], b: tuple[float, float], conf_level: float
) -> tuple[float, float, float, float]:
    """S_a(t) − S_b(t) of two independent groups with a Wald interval and two-sided p, from each
    group's estimate and Greenwood standard error (Klein et al. 2007's naive test)."""
    difference = a[0] - b[0]
    se = math.sqrt(a[1] ** 2 + b[1] ** 2)
    z = float(stats.norm.isf((1 - conf_level) / 2))
    p = float(2 * stats.norm.sf(abs(difference) / se)) if se > 0 else math.nan
    return difference, difference - z * se, difference + z * se, p


def at_risk(times: np.ndarray, t: float) -> int:
    return int(np.count_nonzero(np.asarray(times) >= t))


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class LogRank:
    chi_square: float
    df: int
    p_value: float
    observed: list[float]
    expected: list[float]


def log_rank(
    groups: list[tuple[np.ndarray, np.ndarray]],
    strata: list[np.ndarray] | None = None,
    rho: float = 0.0,
) -> LogRank | None:
    """The test of `log_rank_test`, None where it is undefined."""
    return log_rank_test(groups, strata, rho)[0]


def log_rank_test(
    groups: list[tuple[np.ndarray, np.ndarray]],
    strata: list[np.ndarray] | None = None,
    rho: float = 0.0,
) -> tuple[LogRank | None, str]:
    """k-sample G-rho test as R `survdiff(rho = rho)`: log-rank at rho = 0, Peto–Peto
    (Fleming–Harrington G(rho, 0)) weights S(t−)^rho with S the Kaplan–Meier of the pooled
    stratum. With `strata` (one code per patient of each group) the observed, expected and
    variance are summed over strata, as `survdiff(... + strata(s))`. (None, why) when it is
    undefined: fewer than two groups with patients, no events, or a singular variance (every
    event on one time with everyone at risk dying, say), where R's survdiff stops too."""
    codes = (
        [np.zeros(len(t), int) for t, _ in groups] if strata is None else [np.asarray(s, int) for s in strata]
    )
    kept = [
        (np.asarray(t, float), np.asarray(e, bool), c)
        for (t, e), c in zip(groups, codes, strict=True)
        if len(t)
    ]
    if len(kept) < 2:
        return None, "fewer than two groups with patients"
    if not any(e.any() for _, e, _ in kept):
        return None, "no events"
    k = len(kept)
    observed = np.zeros(k)
    expected = np.zeros(k)
    variance = np.zeros((k, k))
    for stratum in np.unique(np.concatenate([c for _, _, c in kept])):
        parts = [(t[c == stratum], e[c == stratum]) for t, e, c in kept]
        o, x, v = _stratum_test(parts, rho)
        observed += o
        expected += x
        variance += v
    keep = expected > 0
    df = int(np.count_nonzero(keep)) - 1
    if df < 1:
        return None, "fewer than two groups with patients at risk at an event time"
    diff = (observed - expected)[keep][:-1]
    reduced = variance[np.ix_(keep, keep)][:-1, :-1]
    # R solves with LAPACK and stops when the reciprocal condition number is below machine epsilon
    with np.errstate(divide="ignore"):
        rcond = 1 / np.linalg.cond(reduced, 1) if np.any(reduced) else 0.0
    if not np.isfinite(rcond) or rcond < np.finfo(float).eps:
        return (
            None,
            "the variance matrix is singular (e.g. every event on one time with no one else at risk), as R survdiff",
        )
    chi_square = float(diff @ np.linalg.solve(reduced, diff))
    test = LogRank(chi_square, df, float(stats.chi2.sf(chi_square, df)), observed.tolist(), expected.tolist())
    return test, ""


def _stratum_test(
    groups: list[tuple[np.ndarray, np.ndarray]], rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted observed, expected and variance of one stratum (R survdiff2.c)."""
    k = len(groups)
    every = np.concatenate([t for t, _ in groups])
    dead = np.concatenate([e for _, e in groups])
    if not dead.any():
        return np.zeros(k), np.zeros(k), np.zeros((k, k))
    event_times = np.unique(every[dead])
    n_g = np.array(
        [len(t) - np.searchsorted(np.sort(t), event_times, side="left") for t, _ in groups], dtype=float
    )
    d_g = np.zeros((k, len(event_times)))
    for row, (t, e) in enumerate(groups):
        own, counts = np.unique(t[e], return_counts=True)
        d_g[row, np.searchsorted(event_times, own)] = counts
    n, d = n_g.sum(axis=0), d_g.sum(axis=0)
    if rho:
        # the pooled Kaplan–Meier just before each event time (left-continuous)
        survival = np.cumprod(1 - d / n)
        weight = np.concatenate(([1.0], survival[:-1])) ** rho
    else:
        weight = np.ones(len(event_times))
    share = n_g / n
    observed = (d_g * weight).sum(axis=1)
    expected = (share * d * weight).sum(axis=1)
    hyper = np.where(n > 1, weight**2 * d * (n - d) / np.where(n > 1, n - 1, 1), 0.0)
    variance = np.diag((share * hyper).sum(axis=1)) - (share * hyper) @ share.T
    return observed, expected, variance


@dataclass(frozen=True)
class RestrictedMean:
    tau: float
    estimate: float
    se: float
    variance: float


def restricted_mean(km: KaplanMeier, tau: float) -> RestrictedMean:
    """The area under the Kaplan–Meier curve up to tau with its Greenwood-type variance, as
    survRM2's `rmst1` (and `print(survfit, rmean = tau)`)."""
    keep = km.time <= tau
    times = np.sort(np.append(km.time[keep], tau))
    surv = km.surv[keep]
    areas = np.diff(np.concatenate(([0.0], times))) * np.concatenate(([1.0], surv))
    n_risk, n_event = km.n_risk[keep].astype(float), km.n_event[keep].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        increments = np.where(n_risk - n_event == 0, 0.0, n_event / (n_risk * (n_risk - n_event)))
    increments = np.append(increments, 0.0)
    variance = float(np.sum(np.cumsum(areas[1:][::-1]) ** 2 * increments[::-1][1:]))
    return RestrictedMean(tau, float(areas.sum()), math.sqrt(variance), variance)


def restricted_mean_difference(
    first: RestrictedMean, second: RestrictedMean, conf_level: float
) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
    """(difference, lower, upper, p) and (ratio, lower, upper, p) of first vs second, as
    survRM2's `rmst2` (the ratio on the log scale); the ratio is NaN when a mean is 0."""
    z = float(stats.norm.isf((1 - conf_level) / 2))
    d = first.estimate - second.estimate
    se = math.sqrt(first.variance + second.variance)
    p = float(2 * stats.norm.sf(abs(d) / se)) if se > 0 else math.nan
    difference = (d, d - z * se, d + z * se, p)
    if first.estimate <= 0 or second.estimate <= 0:
        return difference, (math.nan, math.nan, math.nan, math.nan)
    log_ratio = math.log(first.estimate) - math.log(second.estimate)
    log_se = math.sqrt(first.variance / first.estimate**2 + second.variance / second.estimate**2)
    p_ratio = float(2 * stats.norm.sf(abs(log_ratio) / log_se)) if log_se > 0 else math.nan
    ratio = (math.exp(log_ratio), math.exp(log_ratio - z * log_se), math.exp(log_ratio + z * log_se), p_ratio)
    return difference, ratio


def landmark_sample(
    times: np.ndarray, events: np.ndarray, landmark: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmark analysis: only patients still followed and event-free after the landmark
    (time > L), with time reset to start there. Returns (kept mask, times − L, events)."""
    times = np.asarray(times, float)
    kept = times > landmark
    return kept, times[kept] - landmark, np.asarray(events, bool)[kept]


def reverse_kaplan_meier(
    times: np.ndarray, events: np.ndarray, conf_type: ConfType = "log-log", conf_level: float = 0.95
) -> KaplanMeier:
    """The Kaplan–Meier of the censoring times (events and censorings swapped): its median is the
    median follow-up (Schemper & Smith 1996), as R `survfit(Surv(time, 1 - status) ~ 1)`."""
    return kaplan_meier(times, ~np.asarray(events, bool), conf_type, conf_level)
