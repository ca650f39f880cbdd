"""Cumulative incidence with competing risks and Gray's test (pure, no I/O), as R `cmprsk`.

- Estimate: Aalen–Johansen (the all-cause Kaplan–Meier just before t times the cause's hazard
  at t), with the variance of Gray's `cinc` (delta method; R `cuminc(...)$var`).
- Pointwise interval: log(−log) transform, F^(exp(±z·se/(F·log F))), the interval R users put on
  `cuminc` (cmprsk itself prints only the variance); null where F ∈ {0, 1}.
- Gray's (1988) k-sample test of the subdistribution hazards with weight (1 − F(t−))^rho, optionally
  stratified, as R `cuminc(..., rho=, strata=)$Tests` (a port of its `crstm` Fortran).

Causes are small integers: 0 = censored, any other value a cause of failure."""

import math
from dataclasses import dataclass

import numpy as np

from service.analytics.lazy_scipy import stats


@dataclass(frozen=True)
class CumulativeIncidence:
    time: np.ndarray  # the times at which the estimate jumps (distinct failure times of the cause)
    estimate: np.ndarray
    variance: np.ndarray
    n: int
    events: int
    last_time: float  # the largest follow-up time: the estimate is defined up to here

    def at(self, t: float) -> tuple[float, float] | None:
        """(F(t), var) read from the step function, as cmprsk `timepoints`; None beyond the last
        follow-up time."""
        if self.n == 0 or t > self.last_time:
            return None
        index = int(np.searchsorted(self.time, t, side="right")) - 1
        if index < 0:
            return 0.0, 0.0
        return float(self.estimate[index]), float(self.variance[index])


def cumulative_incidence(times: np.ndarray, causes: np.ndarray, cause: int) -> CumulativeIncidence:
    """The cumulative incidence of `cause` (R cmprsk `cinc`): jumps at its distinct failure times."""
    order = np.argsort(np.asarray(times, float), kind="stable")
    y = np.asarray(times, float)[order]
    status = np.asarray(causes, int)[order]
    n = len(y)
    fk, v1, v2, v3, f = 1.0, 0.0, 0.0, 0.0, 0.0
    out_t: list[float] = []
    out_f: list[float] = []
    out_v: list[float] = []
    rs = float(n)
    start = 0
    while start < n:
        stop = start
        while stop < n and y[stop] == y[start]:
            stop += 1
        block = status[start:stop]
        nd1 = int(np.count_nonzero(block == cause))
        nd2 = int(np.count_nonzero((block != 0) & (block != cause)))
        nd = nd1 + nd2
        if nd:
            fkn = fk * (rs - nd) / rs
            if nd1 > 0:
                f = f + fk * nd1 / rs
            if nd2 > 0 and fkn > 0:
                t5 = 1 - (nd2 - 1.0) / (rs - 1.0) if nd2 > 1 else 1.0
                t6 = fk * fk * t5 * nd2 / (rs * rs)
                t3 = 1.0 / fkn
                t4 = f / fkn
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
            if nd1 > 0:
                t5 = 1 - (nd1 - 1.0) / (rs - 1.0) if nd1 > 1 else 1.0
                t6 = fk * fk * t5 * nd1 / (rs * rs)
                t3 = 1 / fkn if fkn > 0 else 0.0
                t4 = 1 + t3 * f
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
                out_t.append(float(y[start]))
                out_f.append(f)
                out_v.append(v1 + f * f * v3 - 2 * f * v2)
            fk = fkn
        rs = n - stop
        start = stop
    return CumulativeIncidence(
        np.array(out_t),
        np.array(out_f),
        np.array(out_v),
        n,
        int(np.count_nonzero(status == cause)),
        float(y[-1]) if n else 0.0,
    )


def log_log_interval(
    estimate: float, variance: float, conf_level: float
) -> tuple[float | None, float | None]:
    """F^exp(±z·se/(F log F)); undefined (None) at F = 0 or 1."""
    if not 0 < estimate < 1 or variance < 0:
        return None, None
    z = float(stats.norm.isf((1 - conf_level) / 2))
    shift = z * math.sqrt(variance) / (estimate * math.log(estimate))
    return estimate ** math.exp(-shift), estimate ** math.exp(shift)


@dataclass(frozen=True)
class GrayTest:
    statistic: float
    df: int
    p_value: float


def gray_test(
    times: np.ndarray,
    causes: np.ndarray,
    groups: np.ndarray,
    cause: int,
    rho: float = 0.0,
    strata: np.ndarray | None = None,
) -> GrayTest | None:
    """Gray's test that `cause`'s cumulative incidence is the same in every group (groups coded
    0..k−1 by the caller, every code present). None with fewer than two groups or a singular
    variance (R reports −1 there)."""
    y = np.asarray(times, float)
    order = np.argsort(y, kind="stable")
    y = y[order]
    c = np.asarray(causes, int)[order]
    m = np.where(c == 0, 0, np.where(c == cause, 1, 2))
    g = np.asarray(groups, int)[order]
    st = np.zeros(len(y), int) if strata is None else np.asarray(strata, int)[order]
    ng = int(g.max()) + 1 if len(g) else 0
    if ng < 2:
        return None
    s = np.zeros(ng - 1)
    v = np.zeros((ng - 1, ng - 1))
    for stratum in np.unique(st):
        keep = st == stratum
        s_k, v_k = _crst(y[keep], m[keep], g[keep], ng, rho)
        s += s_k
        v += v_k
    if np.linalg.matrix_rank(v) < ng - 1:
        return None
    statistic = float(s @ np.linalg.solve(v, s))
    return GrayTest(statistic, ng - 1, float(stats.chi2.sf(statistic, ng - 1)))


def _crst(y: np.ndarray, m: np.ndarray, ig: np.ndarray, ng: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Score and variance of one stratum: cmprsk's `crst`, loop for loop."""
    n = len(y)
    ng1 = ng - 1
    rs = np.bincount(ig, minlength=ng).astype(float)
    s = np.zeros(ng1)
    v = np.zeros((ng1, ng1))
    f1m = np.zeros(ng)
    f1 = np.zeros(ng)
    skmm = np.ones(ng)
    skm = np.ones(ng)
    v3 = np.zeros(ng)
    v2 = np.zeros((ng1, ng))
    c = np.zeros((ng, ng))
    a = np.zeros((ng, ng))
    fm = 0.0
    f = 0.0
    ll = 0
    while ll < n:
        lu = ll
        while lu + 1 < n and y[lu + 1] <= y[ll]:
            lu += 1
        d = np.zeros((3, ng))
        np.add.at(d, (m[ll : lu + 1], ig[ll : lu + 1]), 1)
        nd1, nd2 = d[1].sum(), d[2].sum()
        if nd1 or nd2:
            tr = tq = 0.0
            for i in range(ng):
                if rs[i] <= 0:
                    continue
                td = d[1, i] + d[2, i]
                skm[i] = skmm[i] * (rs[i] - td) / rs[i]
                f1[i] = f1m[i] + skmm[i] * d[1, i] / rs[i]
                tr += rs[i] / skmm[i]
                tq += rs[i] * (1 - f1m[i]) / skmm[i]
            f = fm + nd1 / tr
            fb = (1 - fm) ** rho
            a[:] = 0.0
            for i in range(ng):
                if rs[i] <= 0:
                    continue
                t1 = rs[i] / skmm[i]
                a[i, i] = fb * t1 * (1 - t1 / tr)
                if a[i, i] != 0:
                    c[i, i] += a[i, i] * nd1 / (tr * (1 - fm))
                for j in range(i + 1, ng):
                    if rs[j] <= 0:
                        continue
                    a[i, j] = -fb * t1 * rs[j] / (skmm[j] * tr)
                    if a[i, j] != 0:
                        c[i, j] += a[i, j] * nd1 / (tr * (1 - fm))
            for i in range(1, ng):
                for j in range(i):
                    a[i, j] = a[j, i]
                    c[i, j] = c[j, i]
            for i in range(ng1):
                if rs[i] > 0:
                    s[i] += fb * (d[1, i] - nd1 * rs[i] * (1 - f1m[i]) / (skmm[i] * tq))
            if nd1 > 0:
                for k in range(ng):
                    if rs[k] <= 0:
                        continue
                    t4 = 1 - (1 - f) / skm[k] if skm[k] > 0 else 1.0
                    t5 = 1 - (nd1 - 1) / (tr * skmm[k] - 1) if nd1 > 1 else 1.0
                    t3 = t5 * skmm[k] * nd1 / (tr * rs[k])
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = a[i, k] - t4 * c[i, k]
                        v2[i, k] += t1 * t4 * t3
                        for j in range(i + 1):
                            t2 = a[j, k] - t4 * c[j, k]
                            v[i, j] += t1 * t2 * t3
            if nd2 > 0:
                for k in range(ng):
                    if skm[k] <= 0 or d[2, k] <= 0:
                        continue
                    t4 = (1 - f) / skm[k]
                    t5 = 1 - (d[2, k] - 1.0) / (rs[k] - 1.0) if d[2, k] > 1 else 1.0
                    t3 = t5 * (skmm[k] ** 2 * d[2, k]) / rs[k] ** 2
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = t4 * c[i, k]
                        v2[i, k] -= t1 * t4 * t3
                        for j in range(i + 1):
                            t2 = t4 * c[j, k]
                            v[i, j] += t1 * t2 * t3
        if lu >= n - 1:
            break
        np.subtract.at(rs, ig[ll : lu + 1], 1)
        fm = f
        f1m[:] = f1
        skmm[:] = skm
        ll = lu + 1
    for i in range(ng1):
        for j in range(i + 1):
            for k in range(ng):
                v[i, j] += c[i, k] * c[j, k] * v3[k] + c[i, k] * v2[j, k] + c[j, k] * v2[i, k]
    v = np.tril(v) + np.tril(v, -1).T
    return s, v
