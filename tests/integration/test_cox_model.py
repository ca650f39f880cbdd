"""The Cox model through the API on both databases, against R coxph and cox.zph on the ovarian
data entered as patients (tests/fixtures/r/cox.R), and the cases where no model can be given."""

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"
FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/cox.json").read_text())
OVARIAN = next(c for c in FIXTURE["cases"] if c["name"] == "ovarian: rx, age")


def _ovarian(client: TestClient[Any]) -> str:
    s = f.study(client)
    arms = [f.arm(client, s["id"], label=f"rx {rx}") for rx in (1, 2)]
    for i, (time, event, (rx, age)) in enumerate(
        zip(OVARIAN["time"], OVARIAN["event"], OVARIAN["x"], strict=True)
    ):
        p = f.patient(client, s["id"], subject_code=f"O{i}", arm_id=arms[int(rx) - 1]["id"], age_years=age)
        f.event(client, p["id"], event_type="death" if event else "last_follow_up", study_day=1 + int(time))
    return str(s["id"])


def test_cox_model_equals_coxph(client: TestClient[Any]) -> None:
    study_id = _ovarian(client)
    body = client.get(f"{API}/studies/{study_id}/cox", params={"covariates": ["arm", "age_years"]}).json()
    assert body["not_computable"] is None and body["n"] == len(OVARIAN["time"])
    assert [t["term"] for t in body["terms"]] == ["arm: rx 2 vs rx 1", "age_years"]
    assert [t["coef"] for t in body["terms"]] == pytest.approx(OVARIAN["coef"], abs=1e-8)
    variance = OVARIAN["var"]
    assert [t["se"] ** 2 for t in body["terms"]] == pytest.approx([variance[0][0], variance[1][1]], abs=1e-8)
    assert [t["lower"] for t in body["terms"]] == pytest.approx(OVARIAN["hr_lower"], rel=1e-8)
    tests = {t["test"]: t["chi_square"] for t in body["tests"]}
    assert tests["likelihood_ratio"] == pytest.approx(OVARIAN["logtest"], abs=1e-8)
    assert tests["wald"] == pytest.approx(OVARIAN["wald"], rel=1e-8)
    assert tests["score"] == pytest.approx(OVARIAN["score"], abs=1e-8)
    ph = body["proportional_hazards"]
    assert [t["test"] for t in ph] == ["arm", "age_years", "GLOBAL"]  # per covariate, as R terms = TRUE
    assert [t["chi_square"] for t in ph] == pytest.approx(OVARIAN["zph_chisq"], abs=1e-8)
    assert any("events per coefficient" in w for w in body["warnings"])  # 12 events, 2 coefficients


def test_patients_without_a_covariate_are_counted_out(client: TestClient[Any]) -> None:
    study_id = _ovarian(client)
    p = f.patient(client, study_id, subject_code="no-age")
    f.event(client, p["id"], event_type="death", study_day=50)
    body = client.get(f"{API}/studies/{study_id}/cox", params={"covariates": ["age_years"]}).json()
    assert body["excluded_by_reason"] == {"no age_years": 1}
    assert body["n"] == len(OVARIAN["time"])


@pytest.mark.parametrize(
    ("deaths", "reason"),
    [({"A": [], "B": []}, "no events"), ({"A": [10, 20, 30], "B": []}, "no finite maximum")],
)
def test_no_model_when_the_data_cannot_support_one(
    client: TestClient[Any], deaths: dict[str, list[int]], reason: str
) -> None:
    s = f.study(client)
    for label in ("A", "B"):
        arm = f.arm(client, s["id"], label=label)
        for i in range(3):
            p = f.patient(client, s["id"], subject_code=f"{label}{i}", arm_id=arm["id"])
            days = deaths[label]
            f.event(
                client,
                p["id"],
                event_type="death" if days else "last_follow_up",
                study_day=days[i] if days else 100,
            )
    body = client.get(f"{API}/studies/{s['id']}/cox", params={"covariates": "arm"}).json()
    assert body["terms"] == [] and reason in body["not_computable"]


def test_an_unknown_covariate_is_a_problem(client: TestClient[Any]) -> None:
    s = f.study(client)
    response = client.get(f"{API}/studies/{s['id']}/cox", params={"covariates": "shoe_size"})
    assert response.status_code == 400 and response.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert client.get(f"{API}/studies/{s['id']}/cox").status_code == 400  # covariates are required


def test_firth_cox_through_the_api_equals_coxphf_where_coxph_has_no_maximum(client: TestClient[Any]) -> None:
    """The "monotone likelihood" case of tests/fixtures/r/cox_firth.R (R coxphf) entered as
    patients in two arms, one without events."""
    case = next(
        c
        for c in json.loads((Path(__file__).parents[1] / "fixtures/r/cox_firth.json").read_text())["cases"]
        if c["name"] == "monotone likelihood"
    )
    s = f.study(client)
    arms = [f.arm(client, s["id"], label=f"x {x}") for x in (0, 1)]
    for i, (time, status, (x,)) in enumerate(zip(case["time"], case["status"], case["x"], strict=True)):
        p = f.patient(client, s["id"], subject_code=f"M{i}", arm_id=arms[int(x)]["id"])
        f.event(client, p["id"], event_type="death" if status else "last_follow_up", study_day=1 + int(time))
    url = f"{API}/studies/{s['id']}/cox"
    plain = client.get(url, params={"covariates": "arm"}).json()
    assert plain["terms"] == [] and "firth=auto" in plain["not_computable"]
    for choice in ("auto", "always"):
        body = client.get(url, params={"covariates": "arm", "firth": choice}).json()
        assert body["not_computable"] is None
        [term] = body["terms"]
        assert term["coef"] == pytest.approx(case["coef"], abs=1e-8)
        assert term["se"] ** 2 == pytest.approx(case["var"][0][0], abs=1e-8)
        assert [term["lower"], term["upper"]] == pytest.approx([case["ci_lower"], case["ci_upper"]], rel=1e-7)
        assert term["p_value"] == pytest.approx(case["p"], rel=1e-7)
        [test] = body["tests"]
        assert test["test"] == "penalised_likelihood_ratio"
        assert test["chi_square"] == pytest.approx(2 * (case["loglik"][1] - case["loglik"][0]), rel=1e-9)
        assert "coxphf" in body["method"]["estimation"] and body["proportional_hazards"] == []
        assert any("firth=auto" in w for w in body["warnings"]) == (choice == "auto")
    refused = client.get(url, params={"covariates": "arm", "firth": "always", "strata": "sex"})
    assert refused.status_code == 422 and "strata" in refused.text
