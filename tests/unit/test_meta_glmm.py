"""Random-effects pooling of proportions by the binomial-normal GLMM against R metafor rma.glmm
(measure PLO, lme4 glmer with nAGQ = 7; fixtures: tests/fixtures/r/meta_glmm.R), on data with
0/n and n/n studies, a single study with events, tau² on its boundary and two studies."""

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import integrate, special, stats

from service.analytics.pooling import glmm
from service.analytics.pooling.meta import pool_glmm

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_glmm.json").read_text())


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: c["name"])
def test_the_glmm_equals_metafor_rma_glmm(case: dict[str, Any]) -> None:
    fit = glmm.fit(case["xi"], case["ni"])
    # Both ends optimise to about 1e-7 on a flat top of the likelihood (R's bobyqa to rhoend 1e-12).
    assert fit.mu == pytest.approx(case["mu"], abs=2e-6)
    assert fit.tau2 == pytest.approx(case["tau2"], abs=1e-5, rel=1e-5)
    assert fit.se == pytest.approx(case["se"], rel=2e-5)
    assert fit.i2 == pytest.approx(case["i2"], abs=1e-4)
    assert fit.lrt == pytest.approx(case["qe_lrt"], rel=1e-9)
    assert glmm.p_value(fit.lrt, fit.df) == pytest.approx(case["qep_lrt"], rel=1e-6)
    assert fit.fixed == pytest.approx(case["fixed"], abs=1e-8)
    assert fit.fixed_se == pytest.approx(case["fixed_se"], rel=1e-5)
    pooled = pool_glmm(case["xi"], case["ni"])
    assert pooled is not None and pooled.weights == [] and pooled.corrected_rows == 0
    expit = special.expit
    assert pooled.random.estimate == pytest.approx(expit(case["mu"]), abs=1e-6)
    assert pooled.random.lower == pytest.approx(expit(case["ci_lb"]), abs=1e-5)
    assert pooled.random.upper == pytest.approx(expit(case["ci_ub"]), abs=1e-5)
    assert pooled.prediction.lower == pytest.approx(expit(case["pi_lb"]), abs=1e-5)
    assert pooled.prediction.upper == pytest.approx(expit(case["pi_ub"]), abs=1e-5)


def test_the_quadrature_equals_the_integral_it_approximates() -> None:
    """An independent check of the marginal likelihood: 7-point adaptive quadrature against
    scipy's adaptive integration of the binomial-normal integrand, study by study."""
    x, n = np.array([0.0, 3, 12, 5]), np.array([4.0, 3, 20, 40])
    for mu, tau in [(-1.0, 0.5), (0.3, 1.7), (2.0, 0.05)]:
        exact = 0.0
        for xi, ni in zip(x, n, strict=True):
            value, _ = integrate.quad(
                lambda u, xi=xi, ni=ni, mu=mu, tau=tau: (
                    stats.binom.pmf(xi, ni, special.expit(mu + tau * u)) * stats.norm.pdf(u)
                ),
                -12,
                12,
                epsabs=1e-14,
                epsrel=1e-12,
            )
            exact += math.log(value)
        assert glmm.loglik(x, n, mu, tau) == pytest.approx(exact, rel=1e-4)
    # With no between-study variance it is the binomial likelihood exactly.
    assert glmm.loglik(x, n, 0.2, 0.0) == pytest.approx(
        float(np.sum(stats.binom.logpmf(x, n, special.expit(0.2)))), rel=1e-12
    )


@pytest.mark.parametrize(
    ("events", "totals", "reason"),
    [([0, 0, 0], [5, 8, 2], "no study has an event"), ([5, 8], [5, 8], "every patient")],
)
def test_no_finite_estimate_is_reported_not_computed(
    events: list[int], totals: list[int], reason: str
) -> None:
    assert reason in (glmm.not_computable(events, totals) or "")
    assert pool_glmm(events, totals) is None
