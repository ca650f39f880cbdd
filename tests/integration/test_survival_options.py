"""Survival through the API on both databases against R (tests/fixtures/r/survival_more.R):
Peto–Peto and stratified tests, restricted mean survival time, median follow-up by reverse
Kaplan–Meier and landmark analysis, on R's aml data entered as patients."""

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.analytics.survival.analysis import LANDMARK_EXCLUSION
from tests import factories as f

API = "/api/v1"
FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/survival_more.json").read_text())
AML = next(c for c in FIXTURE["tests"] if c["name"] == "aml by arm stratified by alternating sex")


def _named(section: str, name: str) -> dict[str, Any]:
    return next(c for c in FIXTURE[section] if c["name"] == name)


def _aml(client: TestClient[Any]) -> str:
    """aml as patients: time t weeks read as t days from study day 1 (elapsed days = t)."""
    s = f.study(client)
    arms = [f.arm(client, s["id"], label=label) for label in ("Nonmaintained", "Maintained")]
    for i, (time, event, group, stratum) in enumerate(
        zip(AML["time"], AML["event"], AML["group"], AML["strata"], strict=True)
    ):
        p = f.patient(
            client, s["id"], subject_code=f"A{i}", arm_id=arms[group]["id"], sex=("female", "male")[stratum]
        )
        f.event(client, p["id"], event_type="death" if event else "last_follow_up", study_day=1 + time)
    return str(s["id"])


def test_weighted_and_stratified_tests_equal_survdiff(client: TestClient[Any]) -> None:
    study_id = _aml(client)
    url = f"{API}/studies/{study_id}/survival"
    cases = [
        ({"group_by": "arm"}, "aml, log-rank"),
        ({"group_by": "arm", "rho": 1}, "aml, Peto-Peto (rho 1)"),
        ({"group_by": "arm", "strata": "sex"}, AML["name"]),
    ]
    for params, name in cases:
        body = client.get(url, params=params).json()
        expected = _named("tests", name)
        assert body["log_rank"]["chi_square"] == pytest.approx(expected["chisq"], abs=1e-8), name
        assert body["log_rank"]["p_value"] == pytest.approx(expected["p"], abs=1e-8), name
        assert body["log_rank"]["stratified_by"] == params.get("strata")


def test_restricted_mean_and_follow_up_equal_r(client: TestClient[Any]) -> None:
    study_id = _aml(client)
    body = client.get(f"{API}/studies/{study_id}/survival", params={"group_by": "arm", "tau": 40}).json()
    expected = _named("rmst", "aml, tau 40")
    non, maintained = body["groups"]
    assert [maintained["rmst"]["estimate"], maintained["rmst"]["se"]] == pytest.approx(
        expected["rmst1"], abs=1e-8
    )
    assert [non["rmst"]["estimate"], non["rmst"]["se"]] == pytest.approx(expected["rmst0"], abs=1e-8)
    [comparison] = body["rmst_comparisons"]
    assert comparison["group_key"] == maintained["group"]["key"]
    got = [comparison[k] for k in ("difference", "difference_lower", "difference_upper", "difference_p")]
    assert got == pytest.approx(expected["diff"], abs=1e-8)
    got = [comparison[k] for k in ("ratio", "ratio_lower", "ratio_upper", "ratio_p")]
    assert got == pytest.approx(expected["ratio"], abs=1e-8)

    whole = client.get(f"{API}/studies/{study_id}/survival").json()["groups"][0]
    follow_up = _named("follow_up", "aml")
    assert whole["follow_up"]["time"] == pytest.approx(follow_up["median"], abs=1e-8)
    assert whole["follow_up"]["lower"] == pytest.approx(follow_up["lower"], abs=1e-8)
    assert whole["follow_up"]["upper"] is None and follow_up["upper"] is None


def test_tau_beyond_follow_up_is_refused_with_a_reason(client: TestClient[Any]) -> None:
    study_id = _aml(client)
    body = client.get(f"{API}/studies/{study_id}/survival", params={"group_by": "arm", "tau": 200}).json()
    assert all(g["rmst"] is None for g in body["groups"]) and body["rmst_comparisons"] == []
    assert any("beyond the last follow-up" in w for w in body["warnings"])


def test_landmark_analysis_equals_survfit_on_the_patients_at_risk(client: TestClient[Any]) -> None:
    study_id = _aml(client)
    body = client.get(f"{API}/studies/{study_id}/survival", params={"landmark_day": 12}).json()
    expected = _named("landmark", "aml, landmark 12")
    [group] = body["groups"]
    assert group["n"] == expected["n"] and body["landmark_day"] == 12
    assert body["excluded_by_reason"] == {LANDMARK_EXCLUSION: len(AML["time"]) - expected["n"]}
    assert [p["time"] for p in group["curve"]] == pytest.approx(expected["curve_time"], abs=1e-8)
    assert [p["survival"] for p in group["curve"]] == pytest.approx(expected["surv"], abs=1e-8)


def test_milestone_differences_equal_survfit_summary(client: TestClient[Any]) -> None:
    milestones = json.loads((Path(__file__).parents[1] / "fixtures/r/milestone.json").read_text())[
        "milestones"
    ]
    study_id = _aml(client)
    body = client.get(
        f"{API}/studies/{study_id}/survival", params={"group_by": "arm", "times": "10,20,30"}
    ).json()
    non, maintained = body["groups"]
    got = body["milestone_comparisons"]
    assert [(m["day"], m["group_key"], m["reference_key"]) for m in got] == [
        (day, maintained["group"]["key"], non["group"]["key"]) for day in (10, 20, 30)
    ]
    for comparison, expected in zip(got, milestones, strict=True):
        for key in ("difference", "lower", "upper"):
            assert comparison[key] == pytest.approx(expected[key], abs=1e-10), (expected["day"], key)
        assert comparison["p_value"] == pytest.approx(expected["p"], abs=1e-10)
