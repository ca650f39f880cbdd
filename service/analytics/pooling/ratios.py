"""Inverse-variance pooling of reported ratios (hazard ratios) on the log scale (pure, no I/O), as
R `metafor::rma(yi, sei)`: each study's log ratio with the standard error its printed interval
implies, (log upper − log lower) / (2·z), z for the interval's own level (Cochrane Handbook 6.3.2;
metafor `conv.wald`); the random-effects and fixed-effect means, tau² and the intervals as in
`meta.random_effects`; results exponentiated back to ratios."""

import math
from dataclasses import dataclass

import numpy as np

from service.analytics.lazy_scipy import stats
from service.analytics.pooling.meta import Pooled, Tau2Method, random_effects


def standard_error(lower: float, upper: float, level: float) -> float:
    """The log ratio's standard error implied by a Wald interval printed at `level`."""
    return (math.log(upper) - math.log(lower)) / (2 * float(stats.norm.isf((1 - level) / 2)))


@dataclass(frozen=True)
class RatioPool:
    random: Pooled
    fixed: Pooled
    prediction: Pooled
    p_value: float  # of the pooled log ratio being 0 (z, or t with k − 1 df under Hartung–Knapp)
    tau2: float  # on the log scale
    i2: float
    q: float
    df: int
    p_heterogeneity: float | None
    weights: list[float]  # percent, in the order given


def pool_log_ratios(
    ratios: list[float],
    standard_errors: list[float],
    tau2_method: Tau2Method = "DL",
    hksj: bool = False,
    conf_level: float = 0.95,
) -> RatioPool:
    y, v = np.log(np.array(ratios, dtype=float)), np.array(standard_errors, dtype=float) ** 2
    model = random_effects(y, v, tau2_method, hksj, conf_level)
    z = float(stats.norm.isf((1 - conf_level) / 2))
    statistic = model.mu / model.se
    p_value = (
        2 * float(stats.t.sf(abs(statistic), model.df))
        if hksj and model.df > 0
        else 2 * float(stats.norm.sf(abs(statistic)))
    )
    return RatioPool(
        random=Pooled(math.exp(model.mu), math.exp(model.lower), math.exp(model.upper)),
        fixed=Pooled(
            math.exp(model.fixed),
            math.exp(model.fixed - z * model.fixed_se),
            math.exp(model.fixed + z * model.fixed_se),
        ),
        prediction=Pooled(math.exp(model.mu), math.exp(model.pi_lower), math.exp(model.pi_upper)),
        p_value=p_value,
        tau2=model.tau2,
        i2=model.i2,
        q=model.q,
        df=model.df,
        p_heterogeneity=float(stats.chi2.sf(model.q, model.df)) if model.df > 0 else None,
        weights=model.weights.tolist(),
    )
