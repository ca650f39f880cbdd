"""Firth's penalised Cox regression against R coxphf (fixtures: tests/fixtures/r/cox_firth.R):
the package's published worked example (breast; Heinze & Schemper 2001, Table 4), a monotone
likelihood (a group without events), ties with two covariates; and the modified score's
derivative of the information against central differences of the information (an independent
route to the same number)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analytics.regression.cox import cox_fit
from service.analytics.regression.cox_firth import _Breslow, firth_cox_fit

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/cox_firth.json").read_text())


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: c["name"])
def test_firth_cox_equals_coxphf(case: dict[str, Any]) -> None:
    x = np.array(case["x"], dtype=float)
    fit = firth_cox_fit(np.array(case["time"]), np.array(case["status"]), x)
    assert fit.converged
    assert fit.coef == pytest.approx(case["coef"], abs=1e-8)
    assert fit.var == pytest.approx(np.array(case["var"]).reshape(fit.var.shape), abs=1e-8)
    assert fit.ci_lower == pytest.approx(case["ci_lower"], rel=1e-7)
    assert fit.ci_upper == pytest.approx(case["ci_upper"], rel=1e-7)
    assert fit.p == pytest.approx(case["p"], rel=1e-7)
    # coxphf's log-likelihoods carry another constant; the test statistic (their difference) is the same
    assert fit.likelihood_ratio == pytest.approx(2 * (case["loglik"][1] - case["loglik"][0]), rel=1e-9)


def test_the_published_breast_estimates() -> None:
    """Heinze & Schemper (2001), Table 4, as printed (two decimals): T 1.22, N 0.92, G 2.42, CD 0.40."""
    [case] = [c for c in FIXTURE["cases"] if c["name"].startswith("breast")]
    fit = firth_cox_fit(np.array(case["time"]), np.array(case["status"]), np.array(case["x"], dtype=float))
    assert np.round(fit.coef, 2) == pytest.approx([1.22, 0.92, 2.42, 0.40])


def test_the_monotone_likelihood_has_no_finite_standard_estimate_but_a_firth_one() -> None:
    [case] = [c for c in FIXTURE["cases"] if c["name"] == "monotone likelihood"]
    times, events, x = np.array(case["time"]), np.array(case["status"]), np.array(case["x"], dtype=float)
    assert abs(cox_fit(times, events, x, ties="breslow").coef[0]) > 20  # runs off towards infinity
    assert np.isfinite(firth_cox_fit(times, events, x).coef).all()


def test_the_information_derivative_equals_central_differences() -> None:
    rng = np.random.default_rng(7)
    n = 40
    times = rng.integers(1, 15, n).astype(float)  # ties
    events = rng.random(n) < 0.7
    x = rng.normal(size=(n, 3))
    strata = rng.integers(0, 2, n)
    likelihood = _Breslow(times, events, x - x.mean(axis=0), strata)
    beta = np.array([0.3, -0.5, 0.2])
    derivative = likelihood(beta, third=True)[3]
    assert derivative is not None
    step = 1e-6
    for r in range(3):
        shift = np.zeros(3)
        shift[r] = step
        numeric = (likelihood(beta + shift)[2] - likelihood(beta - shift)[2]) / (2 * step)
        assert derivative[:, :, r] == pytest.approx(numeric, abs=1e-6)
    # and its log-likelihood, score and information are coxph's Breslow ones
    reference = cox_fit(times, events, x, strata=strata, ties="breslow")
    assert reference.converged
    fitted = likelihood(reference.coef)
    assert fitted[0] == pytest.approx(reference.loglik, rel=1e-10)
    assert fitted[1] == pytest.approx(np.zeros(3), abs=1e-7)
