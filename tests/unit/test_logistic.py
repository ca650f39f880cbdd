"""Logistic regression, Firth's penalised logistic regression, separation and the
Cochran–Armitage trend test against R (tests/fixtures/r/logistic.R)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from service.analytics.proportions.trend import cochran_armitage
from service.analytics.regression.logistic import (
    firth_likelihood_ratio,
    firth_profile_interval,
    logistic_fit,
    separated,
)

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/logistic.json").read_text())
CASES = FIXTURE["cases"]


def _data(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(case["x"], float), np.array(case["y"], float)


@pytest.mark.parametrize("case", [c for c in CASES if c["ml"]], ids=lambda c: c["name"])
def test_maximum_likelihood_equals_glm(case: dict[str, Any]) -> None:
    x, y = _data(case)
    fit = logistic_fit(x, y)
    r = case["ml"]
    assert fit.converged
    assert fit.coef == pytest.approx(r["coef"], abs=1e-7)
    assert fit.se == pytest.approx(r["se"], abs=1e-7)
    assert fit.loglik == pytest.approx(r["loglik"], abs=1e-9)
    assert -2 * fit.loglik == pytest.approx(r["deviance"], abs=1e-8)
    assert -2 * fit.null_loglik == pytest.approx(r["null_deviance"], abs=1e-8)
    z = fit.coef / fit.se
    assert 2 * stats.norm.sf(np.abs(z)) == pytest.approx(r["p"], abs=1e-8)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_separation_is_detected_exactly(case: dict[str, Any]) -> None:
    x, y = _data(case)
    assert separated(x, y) is case["separated"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_firth_equals_an_independent_maximisation_of_the_penalised_likelihood(case: dict[str, Any]) -> None:
    x, y = _data(case)
    fit = logistic_fit(x, y, firth=True)
    r = case["firth"]
    assert fit.converged
    assert fit.coef == pytest.approx(r["coef"], abs=1e-7)
    assert fit.se == pytest.approx(r["se"], abs=1e-7)
    assert fit.penalised_loglik == pytest.approx(r["penalised_loglik"], abs=1e-9)
    assert fit.null_loglik == pytest.approx(case["firth_null_penalised"], abs=1e-9)
    for j in range(x.shape[1]):
        assert firth_likelihood_ratio(x, y, fit, j) == pytest.approx(r["lr_chisq"][j], abs=1e-7)
        lower, upper = firth_profile_interval(x, y, fit, j, 0.95)
        assert lower == pytest.approx(r["lower"][j], abs=1e-6)
        assert upper == pytest.approx(r["upper"][j], abs=1e-6)


@pytest.mark.parametrize("case", FIXTURE["trend"], ids=lambda c: c["name"])
def test_cochran_armitage_equals_prop_trend_test(case: dict[str, Any]) -> None:
    result = cochran_armitage(case["x"], case["n"], case["score"])
    assert result is not None
    assert result.chi_square == pytest.approx(case["chisq"], abs=1e-9)
    assert result.p_value == pytest.approx(case["p"], abs=1e-10)


def test_a_trend_the_data_cannot_support_is_none() -> None:
    assert cochran_armitage([0, 0], [5, 5], [1, 2]) is None  # nobody responded
    assert cochran_armitage([5, 5], [5, 5], [1, 2]) is None  # everybody did
    assert cochran_armitage([1, 2], [5, 5], [3, 3]) is None  # one score
    assert cochran_armitage([0, 0], [0, 0], [1, 2]) is None  # no patients
