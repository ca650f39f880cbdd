"""Transplant as a time-varying event through the API, on both databases, against R
(tests/fixtures/r/transplant.R): coxph on tmerge data (Efron and Breslow ties, a fixed covariate
beside it), the Mantel–Byar test, Simon–Makuch curves; undated transplants follow the undated
rule; patients with no time after the origin are counted out."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.analytics.regression.time_varying import NO_TIME, UNDATED_TRANSPLANT
from tests import factories as f

API = "/api/v1"
R = json.loads((Path(__file__).parents[1] / "fixtures/r/transplant.json").read_text())
DATA = R["data"]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]  # R writes a vector of one as a scalar


def _cohort(client: TestClient[Any]) -> str:
    s = f.study(client)
    for i, (age, time, death, h) in enumerate(
        zip(DATA["age"], DATA["time"], DATA["death"], DATA["hsct_day"], strict=True)
    ):
        p = f.patient(client, s["id"], subject_code=f"H{i:02d}", age_years=age)
        if h is not None:
            f.event(client, p["id"], event_type="hsct", study_day=1 + int(h))
        f.event(client, p["id"], event_type="death" if death else "last_follow_up", study_day=1 + time)
    return str(s["id"])


def _get(client: TestClient[Any], study_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}/studies/{study_id}/transplant", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("hsct_efron", {}),
        ("hsct_breslow", {"ties": "breslow"}),
        ("hsct_age", {"covariates": "age_years"}),
    ],
)
def test_time_varying_cox_and_mantel_byar_equal_coxph_on_tmerge(
    client: TestClient[Any], name: str, params: dict[str, str]
) -> None:
    expected = R[name]
    body = _get(client, _cohort(client), **params)
    assert body["not_computable"] is None
    assert body["n"] == len(DATA["time"]) and body["intervals"] == expected["n_intervals"]
    assert body["events"] == expected["events"]
    transplanted = sum(
        1 for h, t in zip(DATA["hsct_day"], DATA["time"], strict=True) if h is not None and h < t
    )
    assert body["transplanted"] == transplanted
    assert [t["coef"] for t in body["terms"]] == pytest.approx(_list(expected["coef"]), abs=1e-8)
    assert [t["se"] for t in body["terms"]] == pytest.approx(_list(expected["se"]), abs=1e-8)
    tests = {t["test"]: t["chi_square"] for t in body["tests"]}
    assert tests["likelihood_ratio"] == pytest.approx(
        2 * (expected["loglik"][1] - expected["loglik"][0]), abs=1e-8
    )
    assert tests["wald"] == pytest.approx(expected["wald"], abs=1e-8)
    alone = R["hsct_breslow" if params.get("ties") == "breslow" else "hsct_efron"]
    assert body["mantel_byar"]["chi_square"] == pytest.approx(alone["score"], abs=1e-8)
    assert body["mantel_byar"]["df"] == 1


def test_simon_makuch_curves_equal_survfit_on_the_intervals(client: TestClient[Any]) -> None:
    body = _get(client, _cohort(client))
    for curve, expected in zip(body["simon_makuch"], R["simon_makuch"], strict=True):
        assert curve["state"] == expected["state"]
        assert [p["time"] for p in curve["curve"]] == expected["time"]
        assert [p["n_risk"] for p in curve["curve"]] == expected["n_risk"]
        assert [p["survival"] for p in curve["curve"]] == pytest.approx(expected["surv"], abs=1e-12)


def test_undated_transplants_and_time_zero_are_never_silently_dropped(client: TestClient[Any]) -> None:
    study_id = _cohort(client)
    undated = f.patient(client, study_id, subject_code="U1", age_years=50)
    f.event(client, undated["id"], event_type="hsct", study_day=None)
    f.event(client, undated["id"], event_type="death", study_day=90)
    at_zero = f.patient(client, study_id, subject_code="Z1", age_years=50)
    f.event(client, at_zero["id"], event_type="death", study_day=1)
    withheld = _get(client, study_id)
    assert withheld["terms"] == [] and "U1" in withheld["not_computable"]
    assert withheld["excluded_by_reason"] == {NO_TIME: 1}
    excluded = _get(client, study_id, undated_events="exclude")
    assert excluded["excluded_by_reason"] == {NO_TIME: 1, UNDATED_TRANSPLANT: 1}
    assert any("U1" in w for w in excluded["warnings"])
    # leaving both out, the model is R's on the rest
    assert [t["coef"] for t in excluded["terms"]] == pytest.approx(_list(R["hsct_efron"]["coef"]), abs=1e-8)


def test_a_transplant_nobody_had_is_not_computable(client: TestClient[Any]) -> None:
    s = f.study(client)
    for i in range(4):
        p = f.patient(client, s["id"], subject_code=f"N{i}")
        f.event(client, p["id"], event_type="death", study_day=10 + i)
    body = _get(client, str(s["id"]))
    assert body["terms"] == [] and "one state" in body["not_computable"]
    assert body["mantel_byar"] is None
    [not_transplanted, transplanted] = body["simon_makuch"]
    assert not_transplanted["events"] == 4 and transplanted["curve"] == []
    assert not math.isnan(not_transplanted["curve"][-1]["survival"])


INCIDENCE = json.loads((Path(__file__).parents[1] / "fixtures/r/transplant_incidence.json").read_text())


def _transplanted_cohort(client: TestClient[Any]) -> str:
    data = INCIDENCE["data"]
    s = f.study(client)
    arms = [f.arm(client, s["id"], label=label) for label in ("A", "B")]
    for i in range(len(data["h"])):
        p = f.patient(client, s["id"], subject_code=f"T{i:02d}", arm_id=arms[data["arm"][i]]["id"])
        f.event(client, p["id"], event_type="hsct", study_day=data["h"][i])
        if data["gvhd_day"][i] is not None:
            f.event(
                client,
                p["id"],
                event_type="gvhd",
                gvhd_kind="acute",
                gvhd_grade=data["grade"][i],
                study_day=data["gvhd_day"][i],
            )
        if data["relapse_day"][i] is not None:
            f.event(client, p["id"], event_type="relapse", study_day=data["relapse_day"][i])
        if data["death_day"][i] is not None:
            f.event(client, p["id"], event_type="death", study_day=data["death_day"][i])
        f.event(client, p["id"], event_type="last_follow_up", study_day=data["last"][i])
    return str(s["id"])


@pytest.mark.parametrize(("outcome", "name"), [("gvhd", "gvhd"), ("non_relapse_mortality", "nrm")])
def test_incidence_from_transplant_equals_cuminc(client: TestClient[Any], outcome: str, name: str) -> None:
    expected = INCIDENCE[name]
    study_id = _transplanted_cohort(client)
    response = client.get(
        f"{API}/studies/{study_id}/transplant/cumulative-incidence",
        params={"outcome": outcome, "group_by": "arm", "times": "30,100,365"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    estimates = {}
    for g, group in enumerate(body["groups"]):
        for c, cause in enumerate(group["causes"]):
            estimates[f"{g} {c + 1}"] = [lm["estimate"] for lm in cause["landmarks"]]
    for row, est in zip(expected["rows"], expected["est"], strict=True):
        assert estimates[row] == pytest.approx(est, abs=1e-10), row
    assert [t["statistic"] for t in body["gray_tests"]] == pytest.approx(expected["statistic"], abs=1e-8)
    assert [t["p_value"] for t in body["gray_tests"]] == pytest.approx(expected["p"], abs=1e-8)


def test_incidence_from_transplant_counts_who_is_out_and_withholds_the_undated(
    client: TestClient[Any],
) -> None:
    study_id = _transplanted_cohort(client)
    never = f.patient(client, study_id, subject_code="N1")
    f.event(client, never["id"], event_type="death", study_day=40)
    undated = f.patient(client, study_id, subject_code="U2")
    f.event(client, undated["id"], event_type="hsct", study_day=80)
    f.event(client, undated["id"], event_type="gvhd", gvhd_kind="acute", gvhd_grade=3, study_day=None)
    url = f"{API}/studies/{study_id}/transplant/cumulative-incidence"
    withheld = client.get(url).json()
    assert withheld["excluded_by_reason"]["no transplant recorded (the origin of this analysis)"] == 1
    assert withheld["groups"][0]["not_computable"] and "U2" in withheld["undated_events"]["subject_codes"]
    excluded = client.get(url, params={"undated_events": "exclude"}).json()
    assert excluded["groups"][0]["not_computable"] is None
    assert sum(excluded["excluded_by_reason"].values()) == 2
    # a grade I acute GVHD is not GVHD II-IV, and for non-relapse mortality GVHD neither counts nor competes
    assert excluded["method"]["causes"].startswith("gvhd = a first event that is acute GVHD of grade >= 2")
