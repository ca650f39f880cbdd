"""Pooling through the API on both databases against R metafor
(tests/fixtures/r/meta_random_effects.R)."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"


def test_pooled_estimates_through_the_api_equal_metafor(client: TestClient[Any]) -> None:
    """The "two studies" case of tests/fixtures/r/meta_random_effects.R (logit scale), entered as
    patients: REML with Hartung–Knapp and Paule–Mandel with Wald intervals."""
    fixture = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_random_effects.json").read_text())
    for events, total in ((3, 10), (15, 20)):
        s = f.study(client, design="single_arm_trial")
        for i in range(total):
            p = f.patient(client, s["id"], subject_code=f"P{i}")
            f.response(client, p["id"], study_day=28, category="CR" if i < events else "NR")

    def expit(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    for method, test in (("REML", "knha"), ("PM", "z")):
        [case] = [
            c
            for c in fixture["cases"]
            if c["name"] == "two studies"
            and c["measure"] == "PLO"
            and c["method"] == method
            and c["test"] == test
        ]
        body = client.get(
            f"{API}/evidence/response-rates",
            params={"tau2_method": method, "hartung_knapp": str(test == "knha").lower()},
        ).json()
        pooled = body["pooled"]
        assert pooled["tau2"] == pytest.approx(case["tau2"], abs=1e-8)
        random = pooled["random_effects"]
        assert random["estimate"] == pytest.approx(expit(case["mu"]), abs=1e-8)
        assert [random["ci_lower"], random["ci_upper"]] == pytest.approx(
            [expit(v) for v in case["ci"]], abs=1e-8
        )
        # two studies: no prediction interval (metafor gives one, on a tau² with 1 df)
        assert pooled["prediction_interval"] is None
        assert "at least 3" in pooled["prediction_interval_not_computable"]
        assert [r["weight_percent"] for r in body["rows"]] == pytest.approx(case["weights"], abs=1e-8)


def test_the_prediction_interval_from_three_studies_equals_metafor(client: TestClient[Any]) -> None:
    """The "homogeneous 10/20, 20/40, 30/60" case of tests/fixtures/r/meta_random_effects.R."""
    fixture = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_random_effects.json").read_text())
    for events, total in ((10, 20), (20, 40), (30, 60)):
        s = f.study(client, design="single_arm_trial")
        for i in range(total):
            p = f.patient(client, s["id"], subject_code=f"P{i}")
            f.response(client, p["id"], study_day=28, category="CR" if i < events else "NR")
    [case] = [
        c
        for c in fixture["cases"]
        if c["name"] == "homogeneous 10/20, 20/40, 30/60"
        and c["measure"] == "PLO"
        and c["method"] == "REML"
        and c["test"] == "z"
    ]
    pooled = client.get(f"{API}/evidence/response-rates", params={"tau2_method": "REML"}).json()["pooled"]
    interval = pooled["prediction_interval"]
    assert pooled["studies"] == 3 and pooled["prediction_interval_not_computable"] is None
    assert [interval["ci_lower"], interval["ci_upper"]] == pytest.approx(
        [1 / (1 + math.exp(-v)) for v in case["pi"]], abs=1e-8
    )


def _studies_of_responders(client: TestClient[Any], counts: list[tuple[int, int]]) -> None:
    for year, (events, total) in enumerate(counts, start=2015):
        s = f.study(client, design="single_arm_trial", start_date=f"{year}-01-01")
        for i in range(total):
            p = f.patient(client, s["id"], subject_code=f"P{i}")
            f.response(client, p["id"], study_day=28, category="CR" if i < events else "NR")


def test_glmm_pooling_through_the_api_equals_metafor_rma_glmm(client: TestClient[Any]) -> None:
    """The "case series with 0/n and n/n" case of tests/fixtures/r/meta_glmm.R, entered as patients:
    no continuity correction, no weights, the likelihood-ratio heterogeneity test."""
    fixture = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_glmm.json").read_text())
    [case] = [c for c in fixture["cases"] if c["name"] == "case series with 0/n and n/n"]
    _studies_of_responders(client, list(zip(case["xi"], case["ni"], strict=True)))
    body = client.get(f"{API}/evidence/response-rates", params={"model": "glmm"}).json()
    pooled = body["pooled"]

    def expit(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    assert pooled["model"] == "glmm" and pooled["tau2_method"] == "ML"
    assert pooled["tau2"] == pytest.approx(case["tau2"], rel=1e-5)
    random = pooled["random_effects"]
    assert random["estimate"] == pytest.approx(expit(case["mu"]), abs=1e-6)
    assert [random["ci_lower"], random["ci_upper"]] == pytest.approx(
        [expit(case["ci_lb"]), expit(case["ci_ub"])], abs=1e-5
    )
    interval = pooled["prediction_interval"]
    assert [interval["ci_lower"], interval["ci_upper"]] == pytest.approx(
        [expit(case["pi_lb"]), expit(case["pi_ub"])], abs=1e-5
    )
    assert pooled["q"] == pytest.approx(case["qe_lrt"], rel=1e-8) and pooled["df"] == len(case["xi"]) - 1
    assert pooled["i2"] == pytest.approx(case["i2"] / 100, abs=1e-6)
    assert pooled["continuity_corrected_rows"] == 0
    assert all(r["weight_percent"] is None for r in body["rows"])
    assert "rma.glmm" in body["method"]["random_effects"]
    # Sensitivity views are GLMMs too: one leave-one-out estimate per study, one cumulative per
    # year from the second study on.
    assert len(body["leave_one_out"]) == len(case["xi"])
    assert [row["studies"] for row in body["cumulative"]] == list(range(2, len(case["xi"]) + 1))
    # The same data by inverse variance needs the correction the GLMM avoids.
    plain = client.get(f"{API}/evidence/response-rates").json()["pooled"]
    assert plain["model"] == "inverse-variance" and plain["continuity_corrected_rows"] == 3


def test_glmm_without_a_finite_estimate_says_why_and_sensitivity_gaps_are_counted(
    client: TestClient[Any],
) -> None:
    _studies_of_responders(client, [(0, 3), (0, 4), (2, 5)])
    body = client.get(f"{API}/evidence/response-rates", params={"model": "glmm"}).json()
    # Without the third study the other two have no event: that leave-one-out estimate (and the
    # cumulative one of the first two years) does not exist, and the answer counts them.
    assert body["pooled"] is not None and len(body["leave_one_out"]) == 2
    assert [row["studies"] for row in body["cumulative"]] == [3]
    assert any("2 sensitivity estimate(s) left out" in w for w in body["warnings"])
    only_zeros = client.get(
        f"{API}/evidence/response-rates",
        params={"model": "glmm", "study_id": [s["id"] for s in _first_two(client)]},
    ).json()
    assert only_zeros["pooled"] is None and "no study has an event" in only_zeros["not_computable"]


def _first_two(client: TestClient[Any]) -> list[dict[str, Any]]:
    studies = client.get(f"{API}/studies", params={"limit": 50}).json()["items"]
    return sorted(studies, key=lambda s: s["start_date"])[:2]


@pytest.mark.parametrize(
    ("param", "value"), [("transform", "freeman-tukey"), ("tau2_method", "REML"), ("hartung_knapp", "true")]
)
def test_glmm_refuses_options_that_do_not_apply(client: TestClient[Any], param: str, value: str) -> None:
    answer = client.get(f"{API}/evidence/response-rates", params={"model": "glmm", param: value})
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json")
    assert param in answer.text
