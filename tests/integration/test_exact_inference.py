"""Exact and small-sample inference through the API on both databases, against R
(tests/fixtures/r/exact.R): the two-arm comparison (Fisher, conditional odds ratio, Newcombe risk
difference), the target-rate binomial test, Fisher–Freeman–Halton on three arms, Fisher on
grade >= 3, and Simon's designs."""

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"
FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/exact.json").read_text())


def _fixture(section: str, **match: Any) -> dict[str, Any]:
    return next(c for c in FIXTURE[section] if all(c[k] == v for k, v in match.items()))


def _arms(client: TestClient[Any], responders: list[tuple[int, int]]) -> str:
    s = f.study(client)
    for index, (x, n) in enumerate(responders):
        arm = f.arm(client, s["id"], label=f"Arm {index}")
        for i in range(n):
            p = f.patient(client, s["id"], subject_code=f"{index}-{i}", arm_id=arm["id"])
            f.response(client, p["id"], study_day=28, category="CR" if i < x else "NR")
    return str(s["id"])


def test_two_arm_comparison_and_target_test_equal_r(client: TestClient[Any]) -> None:
    study_id = _arms(client, [(2, 10), (5, 10)])
    body = client.get(
        f"{API}/studies/{study_id}/response-rates", params={"group_by": "arm", "target_rate": 0.2}
    ).json()
    comparison = body["comparison"]
    # every contrast is the second arm against the first: R's fisher.test on the rows swapped
    assert comparison["group_key"] == body["groups"][1]["group"]["key"]
    assert comparison["reference_key"] == body["groups"][0]["group"]["key"]
    assert comparison["contrast"] == "'Arm 1' vs 'Arm 0' (reference)"
    fisher = _fixture("fisher", table=[5, 5, 2, 8])
    assert comparison["p_value"] == pytest.approx(fisher["p"], abs=1e-8)
    assert comparison["odds_ratio"] == pytest.approx((5 * 8) / (5 * 2))
    assert comparison["conditional_odds_ratio"] == pytest.approx(fisher["estimate"], rel=1e-8)
    ci = comparison["conditional_odds_ratio_ci"]
    assert [ci["lower"], ci["upper"]] == pytest.approx([fisher["lower"], fisher["upper"]], rel=1e-8)
    newcombe = _fixture("newcombe", counts=[5, 10, 2, 10])  # second arm minus first
    assert comparison["risk_difference"] == pytest.approx(newcombe["difference"], abs=1e-8)
    interval = comparison["risk_difference_ci"]
    assert [interval["lower"], interval["upper"]] == pytest.approx(
        [newcombe["lower"], newcombe["upper"]], abs=1e-8
    )
    for group, x in zip(body["groups"], (2, 5), strict=True):
        expected = _fixture("binomial", x=x, n=10, p=0.2)
        assert group["target_test"]["p_value_greater"] == pytest.approx(expected["greater"], abs=1e-8)
        assert group["target_test"]["p_value_two_sided"] == pytest.approx(expected["two_sided"], abs=1e-8)


def test_an_infinite_conditional_odds_ratio_is_null_with_a_warning(client: TestClient[Any]) -> None:
    study_id = _arms(client, [(1, 4), (4, 4)])
    body = client.get(f"{API}/studies/{study_id}/response-rates", params={"group_by": "arm"}).json()
    assert body["comparison"]["conditional_odds_ratio"] is None
    assert body["comparison"]["conditional_odds_ratio_ci"]["upper"] is None
    assert body["comparison"]["conditional_odds_ratio_ci"]["lower"] > 0
    assert any("infinite" in w for w in body["warnings"])
    # the odds ratio and the risk difference point the same way: the second arm does better
    assert body["comparison"]["risk_difference"] == pytest.approx(0.75)


def test_three_arms_get_the_fisher_freeman_halton_p(client: TestClient[Any]) -> None:
    study_id = _arms(client, [(3, 4), (1, 4), (2, 4)])
    body = client.get(f"{API}/studies/{study_id}/response-rates", params={"group_by": "arm"}).json()
    expected = _fixture("rxc", table=[[3, 1], [1, 3], [2, 2]])
    assert body["comparison"]["exact_p_value"] == pytest.approx(expected["p"], abs=1e-8)
    assert any("Fisher–Freeman–Halton" in w for w in body["warnings"])  # expected counts below 5


def test_adverse_event_incidence_tests_any_grade_and_grade_3_or_more(client: TestClient[Any]) -> None:
    s = f.study(client)
    # per arm: (patients with the term, of whom grade 3) out of 4
    for index, (with_term, severe) in enumerate([(3, 2), (1, 0), (2, 1)]):
        arm = f.arm(client, s["id"], label=f"Arm {index}")
        for i in range(4):
            p = f.patient(client, s["id"], subject_code=f"{index}-{i}", arm_id=arm["id"])
            if i < with_term:
                f.create(
                    client,
                    "adverse-events",
                    {
                        "patient_id": p["id"],
                        "term": "Febrile neutropenia",
                        "grade": 3 if i < severe else 2,
                        "grading_system": "CTCAE_v5",
                    },
                )
    body = client.get(f"{API}/studies/{s['id']}/adverse-event-incidence", params={"group_by": "arm"}).json()
    [row] = body["rows"]
    assert row["fisher_p"] == pytest.approx(_fixture("rxc", table=[[3, 1], [1, 3], [2, 2]])["p"], abs=1e-8)
    assert row["fisher_p_severe"] == pytest.approx(
        _fixture("rxc", table=[[2, 2], [0, 4], [1, 3]])["p"], abs=1e-8
    )


def test_simon_two_stage_designs_through_the_api(client: TestClient[Any]) -> None:
    body = client.get(f"{API}/designs/simon-two-stage", params={"p0": 0.1, "p1": 0.3, "n_max": 40}).json()
    optimal, minimax = body["optimal"], body["minimax"]
    assert (optimal["r1"], optimal["n1"], optimal["r"], optimal["n"]) == (1, 10, 5, 29)  # Simon 1989, Table 1
    assert (minimax["r1"], minimax["n1"], minimax["r"], minimax["n"]) == (1, 15, 5, 25)
    refused = client.get(f"{API}/designs/simon-two-stage", params={"p0": 0.3, "p1": 0.1})
    assert refused.status_code in (400, 422) and refused.headers["content-type"].startswith(
        "application/problem+json"
    )
