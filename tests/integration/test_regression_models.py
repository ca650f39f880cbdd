"""Regression models through the API on both databases, against R: Cox models with a factor and a
named reference level, an interaction, and cox.zph's joint test per covariate
(tests/fixtures/r/cox_factors.R); logistic regression of response by maximum likelihood and by
Firth's method when the data separate (tests/fixtures/r/logistic.R)."""

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.analytics.regression.response_model import NOT_EVALUABLE
from tests import factories as f

API = "/api/v1"
FIXTURES = Path(__file__).parents[1] / "fixtures/r"
COX = json.loads((FIXTURES / "cox_factors.json").read_text())
LOGISTIC = {c["name"]: c for c in json.loads((FIXTURES / "logistic.json").read_text())["cases"]}


def _lung(client: TestClient[Any]) -> str:
    data = COX["data"]
    s = f.study(client)
    for i, (time, event, ecog, male, age) in enumerate(
        zip(data["time"], data["event"], data["ecog"], data["male"], data["age"], strict=True)
    ):
        p = f.patient(
            client,
            s["id"],
            subject_code=f"L{i:03d}",
            sex="male" if male else "female",
            age_years=age,
            risk_group=ecog,
        )
        f.event(client, p["id"], event_type="death" if event else "last_follow_up", study_day=1 + time)
    return str(s["id"])


@pytest.mark.parametrize("case", ["factor", "interaction"])
def test_cox_with_a_factor_and_its_reference_equals_coxph_and_cox_zph(
    client: TestClient[Any], case: str
) -> None:
    study_id = _lung(client)
    expected = COX[case]
    params: dict[str, Any] = {
        "covariates": ["risk_group", "sex", "age_years"],
        "reference": ["risk_group:ecog 1"],
    }
    if case == "interaction":
        params["interactions"] = ["sex*age_years"]
    response = client.get(f"{API}/studies/{study_id}/cox", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["not_computable"] is None
    names = [
        "risk_group: ecog 0 vs ecog 1",
        "risk_group: ecog 2+ vs ecog 1",
        "sex: male vs female",
        "age_years",
    ]
    if case == "interaction":
        names.append("sex: male vs female × age_years")
    assert [t["term"] for t in body["terms"]] == names
    assert [t["coef"] for t in body["terms"]] == pytest.approx(expected["coef"], abs=1e-8)
    assert [t["se"] for t in body["terms"]] == pytest.approx(expected["se"], abs=1e-8)
    tests = {t["test"]: t["chi_square"] for t in body["tests"]}
    assert tests["wald"] == pytest.approx(expected["wald"], rel=1e-8)
    assert tests["score"] == pytest.approx(expected["score"], abs=1e-8)
    ph = body["proportional_hazards"]
    assert [t["df"] for t in ph] == expected["zph_df"]  # the factor's two columns tested jointly
    assert [t["chi_square"] for t in ph] == pytest.approx(expected["zph_chisq"], abs=1e-8)
    assert [t["p_value"] for t in ph] == pytest.approx(expected["zph_p"], abs=1e-8)


def _responses(
    client: TestClient[Any], name: str, covariate: str, levels: dict[float, str] | None = None
) -> str:
    """A study whose patients carry one covariate (the case's second column) and a response:
    CR when y = 1, NR otherwise; levels maps a design row to a factor level."""
    case = LOGISTIC[name]
    s = f.study(client)
    for i, (row, y) in enumerate(zip(case["x"], case["y"], strict=True)):
        value: Any = levels[tuple(row[1:])] if levels else row[1]  # type: ignore[index]
        p = f.patient(client, s["id"], subject_code=f"R{i:02d}", **{covariate: value})
        f.response(client, p["id"], category="CR" if y else "NR")
    return str(s["id"])


def test_logistic_regression_equals_glm(client: TestClient[Any]) -> None:
    expected = LOGISTIC["small with ties"]
    study_id = _responses(client, "small with ties", "age_years")
    body = client.get(f"{API}/studies/{study_id}/response-model", params={"covariates": "age_years"}).json()
    assert body["estimation"] == "maximum_likelihood" and body["separated"] is False
    assert body["n"] == 12 and body["responders"] == sum(expected["y"])
    ml = expected["ml"]
    assert [t["coef"] for t in body["terms"]] == pytest.approx(ml["coef"], abs=1e-7)
    assert [t["se"] for t in body["terms"]] == pytest.approx(ml["se"], abs=1e-7)
    assert [t["p_value"] for t in body["terms"]] == pytest.approx(ml["p"], abs=1e-8)
    assert body["fit_statistics"]["deviance"] == pytest.approx(ml["deviance"], abs=1e-8)
    assert body["fit_statistics"]["null_deviance"] == pytest.approx(ml["null_deviance"], abs=1e-8)
    assert body["fit_statistics"]["aic"] == pytest.approx(ml["aic"], abs=1e-8)
    [test] = body["tests"]
    assert test["chi_square"] == pytest.approx(ml["null_deviance"] - ml["deviance"], abs=1e-8)


QUASI = "quasi-complete: one group all responders"
RISK = {(0.0, 0.0): "B", (1.0, 0.0): "A", (0.0, 1.0): "C"}


def test_separated_responses_get_firths_model_equal_to_the_reference(client: TestClient[Any]) -> None:
    expected = LOGISTIC[QUASI]["firth"]
    study_id = _responses(client, QUASI, "risk_group", RISK)
    url = f"{API}/studies/{study_id}/response-model"
    params = {"covariates": "risk_group", "reference": "risk_group:B"}
    body = client.get(url, params=params).json()
    assert body["separated"] is True and body["estimation"] == "firth"
    assert [t["term"] for t in body["terms"]] == ["(intercept)", "risk_group: A vs B", "risk_group: C vs B"]
    assert [t["coef"] for t in body["terms"]] == pytest.approx(expected["coef"], abs=1e-7)
    assert [t["se"] for t in body["terms"]] == pytest.approx(expected["se"], abs=1e-7)
    assert [t["chi_square"] for t in body["terms"]] == pytest.approx(expected["lr_chisq"], abs=1e-7)
    assert [t["lower"] for t in body["terms"]] == pytest.approx(
        [2.718281828459045**v for v in expected["lower"]], rel=1e-6
    )
    assert body["fit_statistics"]["penalised_log_likelihood"] == pytest.approx(
        expected["penalised_loglik"], abs=1e-9
    )
    assert any("separated" in w for w in body["warnings"])
    # maximum likelihood refused, with the reason, rather than reported with diverging estimates
    never = client.get(url, params={**params, "firth": "never"}).json()
    assert never["terms"] == [] and "separated" in never["not_computable"]


def test_patients_left_out_are_counted_by_reason(client: TestClient[Any]) -> None:
    s = f.study(client)
    for i, (age, category) in enumerate([(30, "CR"), (40, "NR"), (None, "CR"), (50, "CR"), (60, None)]):
        p = f.patient(client, s["id"], subject_code=f"M{i}", **({"age_years": age} if age else {}))
        if category:
            f.response(client, p["id"], category=category)
    url = f"{API}/studies/{s['id']}/response-model"
    body = client.get(url, params={"covariates": "age_years", "denominator": "evaluable"}).json()
    assert body["excluded_by_reason"] == {"no age_years": 1, NOT_EVALUABLE: 1} and body["n"] == 3
    everyone = client.get(url, params={"covariates": "age_years"}).json()
    assert everyone["excluded_by_reason"] == {"no age_years": 1} and everyone["n"] == 4


@pytest.mark.parametrize(
    "params",
    [
        {"covariates": "sex", "reference": "diagnosis:AML"},  # not a covariate of the model
        {"covariates": "age_years", "reference": "age_years:3"},  # not a factor
        {"covariates": ["sex", "age_years"], "interactions": "sex*arm"},  # arm not in the model
    ],
)
def test_a_model_that_cannot_be_specified_is_refused(client: TestClient[Any], params: dict[str, Any]) -> None:
    s = f.study(client)
    f.patient(client, s["id"])
    for path in ("response-model", "cox"):
        response = client.get(f"{API}/studies/{s['id']}/{path}", params=params)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


def test_trend_across_ordered_groups_equals_prop_trend_test(client: TestClient[Any]) -> None:
    case = json.loads((FIXTURES / "logistic.json").read_text())["trend"][1]  # uneven scores, a zero cell
    s = f.study(client)
    bands = ["age<20", "20<=age<40", "40<=age<60", "age>=60"]
    for k, (x, n) in enumerate(zip(case["x"], case["n"], strict=True)):
        for i in range(n):
            p = f.patient(client, s["id"], subject_code=f"T{k}-{i}", age_years=10 + 20 * k)
            f.response(client, p["id"], category="CR" if i < x else "NR")
    url = f"{API}/studies/{s['id']}/response-rates"
    params = {"group_by": "age", "age_cuts": "20,40,60", "trend_order": ",".join(bands)}
    scores = ",".join(f"{v:g}" for v in case["score"])
    body = client.get(url, params={**params, "trend_scores": scores}).json()
    assert body["trend"]["order"] == bands and body["trend"]["scores"] == case["score"]
    assert body["trend"]["chi_square"] == pytest.approx(case["chisq"], abs=1e-9)
    assert body["trend"]["p_value"] == pytest.approx(case["p"], abs=1e-10)
    # the order is the caller's: reversed, the same statistic (a trend is symmetric in direction)
    backwards = client.get(url, params={**params, "trend_order": ",".join(reversed(bands))}).json()
    assert backwards["trend"]["order"] == bands[::-1]
    for bad in ({"trend_order": "age<20,nowhere"}, {"trend_order": "age<20,age<20"}, {"trend_scores": "1,2"}):
        response = client.get(url, params={**params, **bad})
        assert response.status_code == 422, bad
