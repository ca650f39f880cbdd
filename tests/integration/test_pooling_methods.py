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
