"""Cumulative incidence and Gray's test against R cmprsk::cuminc and survfit multi-state
(fixtures: tests/fixtures/r/competing_risks.R)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analytics.competing_risks.estimators import cumulative_incidence, gray_test, log_log_interval

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/competing_risks.json").read_text())
CASES = FIXTURE["cases"]
TOLERANCE = 1e-8


def _as_array(value: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, float))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_cumulative_incidence_equals_cuminc(case: dict[str, Any]) -> None:
    time, cause, group = (
        _as_array(case["time"]),
        _as_array(case["cause"]).astype(int),
        _as_array(case["group"]).astype(int),
    )
    assert case["curves"], "the fixture has curves"
    for curve in case["curves"]:
        sel = group == curve["group"]
        ours = cumulative_incidence(time[sel], cause[sel], curve["cause"])
        np.testing.assert_allclose(ours.time, _as_array(curve["time"]), atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(ours.estimate, _as_array(curve["estimate"]), atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(ours.variance, _as_array(curve["variance"]), atol=TOLERANCE, rtol=0)
        for t, estimate, variance in zip(
            _as_array(curve["at"]),
            _as_array(curve["at_estimate"]),
            _as_array(curve["at_variance"]),
            strict=True,
        ):
            value = ours.at(float(t))
            if np.isnan(estimate):
                assert value is None
            else:
                assert value is not None
                assert value[0] == pytest.approx(estimate, abs=TOLERANCE)
                assert value[1] == pytest.approx(variance, abs=TOLERANCE)
        # the same Aalen–Johansen estimate as survfit's multi-state curves
        for t, estimate in zip(
            _as_array(curve["survfit_at"]), _as_array(curve["survfit_estimate"]), strict=True
        ):
            value = ours.at(float(t))
            assert value is not None and value[0] == pytest.approx(estimate, abs=TOLERANCE)


@pytest.mark.parametrize("case", [c for c in CASES if c["tests"]], ids=lambda c: c["name"])
def test_gray_test_equals_cuminc(case: dict[str, Any]) -> None:
    time, cause, group = (
        _as_array(case["time"]),
        _as_array(case["cause"]).astype(int),
        _as_array(case["group"]).astype(int),
    )
    strata = None if case["strata"] is None else _as_array(case["strata"]).astype(int)
    tests = case["tests"]
    for k, statistic, p, df in zip(
        _as_array(tests["cause"]),
        _as_array(tests["statistic"]),
        _as_array(tests["p"]),
        _as_array(tests["df"]),
        strict=True,
    ):
        ours = gray_test(time, cause, group, int(k), rho=case["rho"], strata=strata)
        assert ours is not None
        assert ours.statistic == pytest.approx(statistic, abs=TOLERANCE, rel=TOLERANCE)
        assert ours.p_value == pytest.approx(p, abs=TOLERANCE)
        assert ours.df == df


def test_one_group_has_no_test() -> None:
    assert gray_test(np.array([1.0, 2.0]), np.array([1, 2]), np.array([0, 0]), 1) is None


def test_log_log_interval_brackets_the_estimate_and_is_undefined_at_the_edges() -> None:
    lower, upper = log_log_interval(0.3, 0.01, 0.95)
    assert lower is not None and upper is not None and 0 < lower < 0.3 < upper < 1
    assert log_log_interval(0.0, 0.0, 0.95) == (None, None)
    assert log_log_interval(1.0, 0.0, 0.95) == (None, None)
