"""Meta-analysis of proportions (pure, no I/O): fixed effect (inverse variance) and random
effects (DerSimonian & Laird 1986) on the logit scale, or on the Freeman–Tukey double-arcsine
scale back-transformed with Miller's (1978) inversion at the harmonic mean sample size."""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Transform = Literal["logit", "freeman-tukey"]
CONTINUITY = 0.5


@dataclass(frozen=True)
class Pooled:
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class MetaResult:
    random: Pooled
    fixed: Pooled
    tau2: float
    i2: float
    q: float
    df: int
    p_heterogeneity: float | None
    corrected_rows: int


def transformed(
    events: np.ndarray, totals: np.ndarray, transform: Transform
) -> tuple[np.ndarray, np.ndarray, int]:
    """Effect sizes and variances; logit rows at 0 % or 100 % get 0.5 added to both cells."""
    if transform == "logit":
        edge = (events == 0) | (events == totals)
        x = np.where(edge, events + CONTINUITY, events).astype(float)
        y = np.where(edge, totals - events + CONTINUITY, totals - events).astype(float)
        return np.log(x / y), 1 / x + 1 / y, int(edge.sum())
    t = np.arcsin(np.sqrt(events / (totals + 1))) + np.arcsin(np.sqrt((events + 1) / (totals + 1)))
    return t, 1 / (totals + 0.5), 0


def double_arcsine(events: float, n: float) -> float:
    """Freeman–Tukey double arcsine of `events` of `n` (this module's unhalved scale)."""
    return math.asin(math.sqrt(events / (n + 1))) + math.asin(math.sqrt((events + 1) / (n + 1)))


def back_transform(value: float, transform: Transform, harmonic_n: float) -> float:
    """Logit: the inverse logit. Freeman–Tukey: Miller's (1978) inversion at the harmonic-mean n,
    as metafor `transf.ipft.hm` and meta `asin2p`: 0 below the transform of 0 events and 1 above
    that of n events, where Miller's formula stops being monotone."""
    if transform == "logit":
        return 1 / (1 + math.exp(-value))
    if value < double_arcsine(0, harmonic_n):
        return 0.0
    if value > double_arcsine(harmonic_n, harmonic_n):
        return 1.0
    s = math.sin(value)
    inner = 1 - (s + (s - 1 / s) / harmonic_n) ** 2
    return 0.5 * (1 - math.copysign(1.0, math.cos(value)) * math.sqrt(max(inner, 0.0)))


def pool_proportions(
    events: list[int], totals: list[int], transform: Transform = "logit", conf_level: float = 0.95
) -> MetaResult | None:
    """Pooled proportion of k studies; None when no study has patients."""
    e, n = np.array(events, dtype=float), np.array(totals, dtype=float)
    keep = n > 0
    e, n = e[keep], n[keep]
    if e.size == 0:
        return None
    y, v, corrected = transformed(e, n, transform)
    z = float(stats.norm.isf((1 - conf_level) / 2))
    w = 1 / v
    fixed = float(np.sum(w * y) / np.sum(w))
    fixed_se = math.sqrt(1 / float(np.sum(w)))
    k = e.size
    q = float(np.sum(w * (y - fixed) ** 2))
    df = k - 1
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max(0.0, (q - df) / c) if df > 0 and c > 0 else 0.0
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    w_star = 1 / (v + tau2)
    random = float(np.sum(w_star * y) / np.sum(w_star))
    random_se = math.sqrt(1 / float(np.sum(w_star)))
    harmonic = float(k / np.sum(1 / n))

    def pooled(centre: float, se: float) -> Pooled:
        return Pooled(
            back_transform(centre, transform, harmonic),
            back_transform(centre - z * se, transform, harmonic),
            back_transform(centre + z * se, transform, harmonic),
        )

    return MetaResult(
        random=pooled(random, random_se),
        fixed=pooled(fixed, fixed_se),
        tau2=tau2,
        i2=i2,
        q=q,
        df=df,
        p_heterogeneity=float(stats.chi2.sf(q, df)) if df > 0 else None,
        corrected_rows=corrected,
    )
