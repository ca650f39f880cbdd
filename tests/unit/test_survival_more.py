"""Weighted/stratified log-rank, RMST, reverse Kaplan–Meier follow-up and landmark analysis
against R survival and survRM2's formulas (fixtures: tests/fixtures/r/survival_more.R)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analytics.survival.estimators import (
    kaplan_meier,
    landmark_sample,
    log_rank,
    quantile,
    restricted_mean,
    restricted_mean_difference,
    reverse_kaplan_meier,
)

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/survival_more.json").read_text())
TOLERANCE = 1e-8


def _arrays(case: dict[str, Any], *keys: str) -> list[np.ndarray]:
    return [np.atleast_1d(np.asarray(case[k], float)) for k in keys]


@pytest.mark.parametrize("case", FIXTURE["tests"], ids=[c["name"] for c in FIXTURE["tests"]])
def test_log_rank_equals_survdiff(case: dict[str, Any]) -> None:
    time, event, group = _arrays(case, "time", "event", "group")
    strata = None if case["strata"] is None else np.asarray(case["strata"], int)
    codes = sorted(set(group.astype(int)))
    groups = [(time[group == g], event[group == g].astype(bool)) for g in codes]
    per_group_strata = None if strata is None else [strata[group == g] for g in codes]
    ours = log_rank(groups, per_group_strata, rho=case["rho"])
    assert ours is not None
    assert ours.chi_square == pytest.approx(case["chisq"], abs=TOLERANCE, rel=TOLERANCE)
    assert ours.df == case["df"]
    assert ours.p_value == pytest.approx(case["p"], abs=TOLERANCE)
    np.testing.assert_allclose(ours.observed, np.atleast_1d(case["observed"]), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(ours.expected, np.atleast_1d(case["expected"]), atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("case", FIXTURE["rmst"], ids=[c["name"] for c in FIXTURE["rmst"]])
def test_restricted_mean_equals_survrm2(case: dict[str, Any]) -> None:
    time, event, arm = _arrays(case, "time", "event", "arm")
    kms = {a: kaplan_meier(time[arm == a], event[arm == a].astype(bool)) for a in (0, 1)}
    one, zero = (restricted_mean(kms[a], case["tau"]) for a in (1, 0))
    assert [one.estimate, one.se] == pytest.approx(case["rmst1"], abs=TOLERANCE)
    assert [zero.estimate, zero.se] == pytest.approx(case["rmst0"], abs=TOLERANCE)
    assert [one.estimate, one.se] == pytest.approx(case["survival_rmean"], abs=TOLERANCE)
    difference, ratio = restricted_mean_difference(one, zero, 0.95)
    assert list(difference) == pytest.approx(case["diff"], abs=TOLERANCE)
    assert list(ratio) == pytest.approx(case["ratio"], abs=TOLERANCE)


@pytest.mark.parametrize("case", FIXTURE["follow_up"], ids=[c["name"] for c in FIXTURE["follow_up"]])
def test_median_follow_up_equals_reverse_survfit(case: dict[str, Any]) -> None:
    time, event = _arrays(case, "time", "event")
    median, lower, upper = quantile(reverse_kaplan_meier(time, event.astype(bool)), 0.5)
    for ours, theirs in ((median, case["median"]), (lower, case["lower"]), (upper, case["upper"])):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            assert ours == pytest.approx(theirs, abs=TOLERANCE)


@pytest.mark.parametrize("case", FIXTURE["landmark"], ids=[c["name"] for c in FIXTURE["landmark"]])
def test_landmark_analysis_equals_survfit_on_the_patients_at_risk(case: dict[str, Any]) -> None:
    time, event = _arrays(case, "time", "event")
    kept, reset_time, reset_event = landmark_sample(time, event.astype(bool), case["landmark"])
    assert int(kept.sum()) == case["n"]
    km = kaplan_meier(reset_time, reset_event)
    np.testing.assert_allclose(km.time, case["curve_time"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(km.surv, case["surv"], atol=TOLERANCE, rtol=0)
    lower = np.array([np.nan if v is None else v for v in case["lower"]], float)
    np.testing.assert_allclose(km.lower, lower, atol=TOLERANCE, rtol=0)
