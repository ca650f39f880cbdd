"""Meta-analysis of proportions (pure, no I/O), as R `metafor::rma`: fixed effect (inverse
variance) and random effects on the logit scale, or on the Freeman–Tukey double-arcsine scale
(metafor's PFT: half the sum of the two arcsines, so tau² is on metafor's scale) back-transformed
with Miller's (1978) inversion at the harmonic mean sample size.

Between-study variance tau²: DerSimonian–Laird (method of moments), REML (the root of the
restricted likelihood's score, truncated at 0) or Paule–Mandel (generalised Q = k − 1), each as
`rma(method = "DL" | "REML" | "PM")`. Intervals for the pooled mean: Wald (z) or
Hartung–Knapp–Sidik–Jonkman (`test = "knha"`: the variance scaled by the weighted residual
variance, t with k − 1 df, not truncated below 1, as metafor). The prediction interval for the
effect in a new study is mu ± crit·sqrt(tau² + se²) with the same critical value, as metafor's
`predict.rma`. The binomial-normal GLMM (metafor `rma.glmm`) is in `glmm`; `pool_glmm` gives it
the same result shape here, so that the views and the API treat both models alike."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from service.analytics.lazy_scipy import optimize, special, stats
from service.analytics.pooling import glmm

Transform = Literal["logit", "freeman-tukey"]
Tau2Method = Literal["DL", "REML", "PM"]
CONTINUITY = 0.5


@dataclass(frozen=True)
class Pooled:
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class RandomEffects:
    """On the analysis scale: the pooled mean, its standard error and interval, the prediction
    interval, and the heterogeneity statistics."""

    mu: float
    se: float
    lower: float
    upper: float
    pi_lower: float
    pi_upper: float
    tau2: float
    weights: np.ndarray  # percent, summing to 100
    fixed: float
    fixed_se: float
    q: float
    df: int
    i2: float


def _q(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    return float(np.sum(w * (y - mu) ** 2))


def _reml_score(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    return float(np.sum(w**2 * (y - mu) ** 2) - np.sum(w) + np.sum(w**2) / np.sum(w))


def _root(function: Callable[[float], float], upper: float) -> float:
    """The root of a decreasing function on [0, ∞) (0 when it is already ≤ 0 at 0)."""
    if function(0.0) <= 0:
        return 0.0
    while function(upper) > 0:
        upper *= 2
    return float(optimize.brentq(function, 0.0, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def tau_squared(y: np.ndarray, v: np.ndarray, method: Tau2Method) -> float:
    k = len(y)
    if k < 2:
        return 0.0
    w = 1 / v
    if method == "DL":
        q = _q(0.0, y, v)
        c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
        return max(0.0, (q - (k - 1)) / c) if c > 0 else 0.0
    upper = max(float(np.var(y, ddof=1)) * 10, 1.0)
    if method == "PM":
        return _root(lambda t: _q(t, y, v) - (k - 1), upper)
    return _root(lambda t: _reml_score(t, y, v), upper)


def random_effects(
    y: np.ndarray, v: np.ndarray, method: Tau2Method = "DL", hksj: bool = False, conf_level: float = 0.95
) -> RandomEffects:
    k = len(y)
    w = 1 / v
    fixed = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - fixed) ** 2))
    df = k - 1
    tau2 = tau_squared(y, v, method)
    w_star = 1 / (v + tau2)
    mu = float(np.sum(w_star * y) / np.sum(w_star))
    se = math.sqrt(1 / float(np.sum(w_star)))
    alpha = 1 - conf_level
    if hksj and k > 1:
        se *= math.sqrt(float(np.sum(w_star * (y - mu) ** 2)) / df)
        crit = float(stats.t.isf(alpha / 2, df))
    else:
        crit = float(stats.norm.isf(alpha / 2))
    spread = crit * math.sqrt(tau2 + se**2)
    return RandomEffects(
        mu=mu,
        se=se,
        lower=mu - crit * se,
        upper=mu + crit * se,
        pi_lower=mu - spread,
        pi_upper=mu + spread,
        tau2=tau2,
        weights=100 * w_star / np.sum(w_star),
        fixed=fixed,
        fixed_se=math.sqrt(1 / float(np.sum(w))),
        q=q,
        df=df,
        i2=_i_squared(tau2, w, df),
    )


def _i_squared(tau2: float, w: np.ndarray, df: int) -> float:
    """tau² / (tau² + s²), s² the typical within-study variance (Higgins & Thompson 2002), as
    metafor; for DerSimonian–Laird this is (Q − df)/Q truncated at 0."""
    if df < 1:
        return 0.0
    s2 = df * float(np.sum(w)) / (float(np.sum(w)) ** 2 - float(np.sum(w**2)))
    return tau2 / (tau2 + s2)


@dataclass(frozen=True)
class MetaResult:
    random: Pooled
    fixed: Pooled
    prediction: Pooled
    tau2_method: str  # a Tau2Method, or "ML" for the GLMM
    hksj: bool
    weights: list[float]
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
    # metafor's PFT scale: half the sum of the two arcsines, variance 1 / (4n + 2), so tau² is
    # reported on the scale metafor reports it on (the unhalved sum would make it 4 times larger).
    t = 0.5 * (np.arcsin(np.sqrt(events / (totals + 1))) + np.arcsin(np.sqrt((events + 1) / (totals + 1))))
    return t, 1 / (4 * totals + 2), 0


def double_arcsine(events: float, n: float) -> float:
    """Freeman–Tukey double arcsine of `events` of `n` on metafor's PFT scale (half the sum)."""
    return 0.5 * (math.asin(math.sqrt(events / (n + 1))) + math.asin(math.sqrt((events + 1) / (n + 1))))


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
    s = math.sin(2 * value)  # Miller's formula is written for the unhalved sum
    inner = 1 - (s + (s - 1 / s) / harmonic_n) ** 2
    return 0.5 * (1 - math.copysign(1.0, math.cos(2 * value)) * math.sqrt(max(inner, 0.0)))


def pool_proportions(
    events: list[int],
    totals: list[int],
    transform: Transform = "logit",
    conf_level: float = 0.95,
    tau2_method: Tau2Method = "DL",
    hksj: bool = False,
) -> MetaResult | None:
    """Pooled proportion of k studies; None when no study has patients. `weights` (random
    effects, percent) follow the studies given, 0 for a study without patients."""
    e, n = np.array(events, dtype=float), np.array(totals, dtype=float)
    keep = n > 0
    e, n = e[keep], n[keep]
    if e.size == 0:
        return None
    y, v, corrected = transformed(e, n, transform)
    z = float(stats.norm.isf((1 - conf_level) / 2))
    model = random_effects(y, v, tau2_method, hksj, conf_level)
    k = e.size
    harmonic = float(k / np.sum(1 / n))

    def pooled(centre: float, se: float) -> Pooled:
        return Pooled(
            back_transform(centre, transform, harmonic),
            back_transform(centre - z * se, transform, harmonic),
            back_transform(centre + z * se, transform, harmonic),
        )

    def back(value: float) -> float:
        return back_transform(value, transform, harmonic)

    weights = np.zeros(len(keep))
    weights[keep] = model.weights
    return MetaResult(
        random=Pooled(back(model.mu), back(model.lower), back(model.upper)),
        fixed=pooled(model.fixed, model.fixed_se),
        prediction=Pooled(back(model.mu), back(model.pi_lower), back(model.pi_upper)),
        tau2_method=tau2_method,
        hksj=hksj,
        weights=weights.tolist(),
        tau2=model.tau2,
        i2=model.i2,
        q=model.q,
        df=model.df,
        p_heterogeneity=float(stats.chi2.sf(model.q, model.df)) if model.df > 0 else None,
        corrected_rows=corrected,
    )


def pool_glmm(events: list[int], totals: list[int], conf_level: float = 0.95) -> MetaResult | None:
    """The binomial-normal GLMM (metafor rma.glmm, measure PLO), back-transformed; None when no
    study has patients or no finite estimate exists (`glmm.not_computable` says why). No weights:
    a GLMM has no inverse-variance weights (metafor gives none either), so `weights` is empty."""
    kept = [(e, n) for e, n in zip(events, totals, strict=True) if n > 0]
    if not kept or glmm.not_computable([e for e, _ in kept], [n for _, n in kept]):
        return None
    model = glmm.fit([e for e, _ in kept], [n for _, n in kept])
    z = float(stats.norm.isf((1 - conf_level) / 2))

    def around(centre: float, spread: float) -> Pooled:
        return Pooled(*(float(special.expit(v)) for v in (centre, centre - z * spread, centre + z * spread)))

    return MetaResult(
        random=around(model.mu, model.se),
        fixed=around(model.fixed, model.fixed_se),
        prediction=around(model.mu, math.sqrt(model.tau2 + model.se**2)),
        tau2_method="ML",
        hksj=False,
        weights=[],
        tau2=model.tau2,
        i2=model.i2 / 100,
        q=model.lrt,
        df=model.df,
        p_heterogeneity=glmm.p_value(model.lrt, model.df),
        corrected_rows=0,
    )


Pool = Callable[[list[int], list[int]], MetaResult | None]
Row = TypeVar("Row")
Result = TypeVar("Result")


def _enough(rows: list[Row], counts: Callable[[Row], bool]) -> bool:
    return sum(1 for row in rows if counts(row)) >= 2


def leave_one_out(
    rows: list[Row], pool: Callable[[list[Row]], Result | None], counts: Callable[[Row], bool] = bool
) -> list[Result | None]:
    """The pooled estimate without each row in turn (metafor leave1out); None where fewer than
    two rows that `counts` (a study with patients) remain, or where `pool` finds no estimate."""
    rests = [rows[:i] + rows[i + 1 :] for i in range(len(rows))]
    return [pool(rest) if _enough(rest, counts) else None for rest in rests]


def cumulative(
    rows: list[Row], pool: Callable[[list[Row]], Result | None], counts: Callable[[Row], bool] = bool
) -> list[Result | None]:
    """The pooled estimate of the first 1, 2, … rows in the order given (metafor cumul); None
    while fewer than two rows that `counts` are in, or where `pool` finds no estimate."""
    return [pool(rows[:k]) if _enough(rows[:k], counts) else None for k in range(1, len(rows) + 1)]
