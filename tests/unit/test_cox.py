"""The Cox model and cox.zph against R survival (fixtures: tests/fixtures/r/cox.R)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analytics.regression.cox import cox_fit, cox_zph

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/cox.json").read_text())
TOLERANCE = 1e-8


def _inputs(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    x = np.asarray(case["x"], float)
    strata = None if case["strata"] is None else np.asarray(case["strata"], int)
    return (
        np.asarray(case["time"], float),
        np.asarray(case["event"], bool),
        x.reshape(len(case["time"]), -1),
        strata,
    )


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[c["name"] for c in FIXTURE["cases"]])
def test_cox_equals_coxph_efron(case: dict[str, Any]) -> None:
    time, event, x, strata = _inputs(case)
    fit = cox_fit(time, event, x, strata)
    assert fit.converged
    np.testing.assert_allclose(fit.coef, np.atleast_1d(case["coef"]), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(
        fit.var, np.asarray(case["var"], float).reshape(fit.var.shape), atol=TOLERANCE, rtol=0
    )
    assert [fit.loglik_null, fit.loglik] == pytest.approx(case["loglik"], abs=TOLERANCE)
    assert fit.wald == pytest.approx(case["wald"], rel=TOLERANCE)  # chi-square: relative
    assert fit.likelihood_ratio == pytest.approx(case["logtest"], abs=TOLERANCE)
    assert fit.score == pytest.approx(case["score"], abs=TOLERANCE)
    lower, upper = fit.hazard_ratio_interval(0.95)
    np.testing.assert_allclose(lower, np.atleast_1d(case["hr_lower"]), rtol=TOLERANCE)
    np.testing.assert_allclose(upper, np.atleast_1d(case["hr_upper"]), rtol=TOLERANCE)


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[c["name"] for c in FIXTURE["cases"]])
def test_schoenfeld_test_equals_cox_zph(case: dict[str, Any]) -> None:
    time, event, x, strata = _inputs(case)
    fit = cox_fit(time, event, x, strata)
    zph = cox_zph(fit, time, event, x, strata)
    # one row per covariate, then the global test
    np.testing.assert_allclose(zph.chi_square, np.atleast_1d(case["zph_chisq"]), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(zph.p_value, np.atleast_1d(case["zph_p"]), atol=TOLERANCE, rtol=0)
    np.testing.assert_array_equal(zph.df, np.atleast_1d(case["zph_df"]))


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[c["name"] for c in FIXTURE["cases"]])
def test_the_fit_stops_at_the_maximum_not_short_of_it(case: dict[str, Any]) -> None:
    """At the estimate the score (the log-likelihood's gradient) vanishes, as at R's: halving the
    Newton step on rounding noise once stopped 5e-10 short, with a score of 5e-9."""
    from service.analytics.regression.cox import _efron, _prepare

    time, event, x, strata = _inputs(case)
    fit = cox_fit(time, event, x, strata)
    t, e, xc, s, _ = _prepare(time, event, x, strata)
    _, score, _ = _efron(fit.coef, t, e, xc, s)
    assert np.max(np.abs(score)) < 1e-10
