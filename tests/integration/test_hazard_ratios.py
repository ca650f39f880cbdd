"""Printed hazard ratios: their definition's rules, the reconciliation check against their own
interval and p-value, and pooling across studies through the API against R metafor
(tests/fixtures/r/meta_hazard_ratios.R)."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"
QUOTE = [{"source_document": "x.txt", "location": "Figure 2", "quote": "HR 0.66 (95% CI 0.52-0.83)"}]
FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_hazard_ratios.json").read_text())


def _hazard_ratio(client: TestClient[Any], study_id: str, **fields: Any) -> Any:
    definition = {"type": "hazard_ratio", "endpoint": "OS", "comparison": "ven + aza vs aza"}
    definition |= fields.pop("definition", {})
    body = {"study_id": study_id, "measure": "OS HR", "provenance": QUOTE, "definition": definition, **fields}
    return client.post(f"{API}/reported-results", json=body)


def test_pooled_hazard_ratios_through_the_api_equal_metafor(client: TestClient[Any]) -> None:
    [case] = [
        c
        for c in FIXTURE["cases"]
        if c["name"] == "five trials" and c["method"] == "REML" and c["test"] == "knha"
    ]
    for year, (hr, low, high, level) in enumerate(
        zip(case["hr"], case["lower"], case["upper"], case["level"], strict=True), start=2016
    ):
        study = f.study(client, design="randomized_trial", start_date=str(year))
        answer = _hazard_ratio(client, study["id"], value=hr, ci_lower=low, ci_upper=high, ci_level=level)
        assert answer.status_code == 201, answer.text
    # A study printing no interval is shown, not pooled; the pool is unchanged by it.
    bare = f.study(client, design="randomized_trial", start_date="2023")
    assert _hazard_ratio(client, bare["id"], value=0.5).status_code == 201
    # Another endpoint is not selected.
    assert _hazard_ratio(
        client, bare["id"], value=0.7, ci_lower=0.5, ci_upper=0.9, definition={"endpoint": "EFS"}
    )
    body = client.get(
        f"{API}/evidence/hazard-ratios", params={"tau2_method": "REML", "hartung_knapp": "true"}
    ).json()
    pooled = body["pooled"]
    assert pooled["studies"] == 5 and pooled["tau2"] == pytest.approx(case["tau2"], abs=1e-9)
    random = pooled["random_effects"]
    assert math.log(random["estimate"]) == pytest.approx(case["mu"], abs=1e-9)
    assert [math.log(random["ci_lower"]), math.log(random["ci_upper"])] == pytest.approx(case["ci"], abs=1e-9)
    interval = pooled["prediction_interval"]
    assert [math.log(interval["ci_lower"]), math.log(interval["ci_upper"])] == pytest.approx(
        case["pi"], abs=1e-9
    )
    assert pooled["p_value"] == pytest.approx(case["pval"], rel=1e-8)
    assert pooled["q"] == pytest.approx(case["q"], rel=1e-10) and pooled["i2"] == pytest.approx(
        case["i2"], abs=1e-9
    )
    rows = body["rows"]
    assert len(rows) == 6 and [r["standard_error"] for r in rows[:5]] == pytest.approx(case["sei"], rel=1e-12)
    assert [r["weight_percent"] for r in rows[:5]] == pytest.approx(case["weights"], abs=1e-9)
    assert rows[5]["weight_percent"] is None and "no confidence interval" in rows[5]["not_pooled"]
    assert any("without an interval" in w for w in body["warnings"])
    assert len(body["leave_one_out"]) == 5 and all(v["studies"] == 4 for v in body["leave_one_out"])
    assert [v["year"] for v in body["cumulative"]] == [2017, 2018, 2019, 2020]


def test_a_study_with_several_hazard_ratios_pools_none_until_one_is_chosen(client: TestClient[Any]) -> None:
    first, second = f.study(client, start_date="2019"), f.study(client, start_date="2020")
    _hazard_ratio(client, first["id"], value=0.6, ci_lower=0.4, ci_upper=0.9)
    _hazard_ratio(client, second["id"], value=0.8, ci_lower=0.6, ci_upper=1.07)
    _hazard_ratio(
        client,
        second["id"],
        value=0.7,
        ci_lower=0.5,
        ci_upper=0.98,
        definition={"comparison": "ven vs placebo"},
    )
    body = client.get(f"{API}/evidence/hazard-ratios").json()
    assert body["pooled"] is None and "at least 2" in body["not_computable"]
    assert (
        sum(1 for r in body["rows"] if r["not_pooled"] and "count its patients twice" in r["not_pooled"]) == 2
    )
    chosen = client.get(f"{API}/evidence/hazard-ratios", params={"comparison": "VEN + AZA vs aza"}).json()
    assert chosen["pooled"]["studies"] == 2 and chosen["pooled"]["prediction_interval"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "value"),
        ({"value": 0}, "value"),
        ({"value": 0.5, "ci_lower": 0, "ci_upper": 0.9}, "ci_lower"),
        ({"value": 0.5, "ci_lower": 0.4}, "ci_upper"),
        ({"value": 1.2, "ci_lower": 0.4, "ci_upper": 0.9}, "value"),
    ],
)
def test_a_hazard_ratio_that_has_no_log_is_refused(
    client: TestClient[Any], fields: dict[str, Any], field: str
) -> None:
    study = f.study(client)
    answer = _hazard_ratio(client, study["id"], **fields)
    assert answer.status_code == 422 and field in answer.text
    assert client.get(f"{API}/reported-results", params={"study_id": study["id"]}).json()["items"] == []


def test_reconciliation_checks_a_hazard_ratio_against_its_interval_and_p_value(
    client: TestClient[Any],
) -> None:
    study = f.study(client)
    # 0.66 (0.52–0.83): log-symmetric to rounding; p from z = log(0.66)/se ≈ 0.0004.
    _hazard_ratio(client, study["id"], measure="ok", value=0.66, ci_lower=0.52, ci_upper=0.83, p_value=0.0004)
    _hazard_ratio(client, study["id"], measure="typo", value=0.56, ci_lower=0.52, ci_upper=0.83)
    _hazard_ratio(
        client, study["id"], measure="wrong p", value=0.66, ci_lower=0.52, ci_upper=0.83, p_value=0.04
    )
    results = {
        r["measure"]: r for r in client.get(f"{API}/studies/{study['id']}/reconciliation").json()["results"]
    }
    check = {
        m: next(c for c in r["checks"] if c["check"] == "confidence_interval") for m, r in results.items()
    }
    assert check["ok"]["verdict"] == "consistent" and "p fits" in check["ok"]["detail"]
    assert check["typo"]["verdict"] == "inconsistent" and "not centred" in check["typo"]["detail"]
    assert check["wrong p"]["verdict"] == "inconsistent" and "implies p = 0.000" in check["wrong p"]["detail"]
