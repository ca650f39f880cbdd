"""Inverse-variance pooling of reported hazard ratios against R metafor rma(yi, sei)
(fixtures: tests/fixtures/r/meta_hazard_ratios.R): every tau² estimator, Wald and
Hartung–Knapp intervals, a study whose interval is printed at 90 %."""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from service.analytics.pooling.ratios import pool_log_ratios, standard_error

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_hazard_ratios.json").read_text())


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: f"{c['name']} {c['method']} {c['test']}")
def test_pooled_hazard_ratios_equal_metafor(case: dict[str, Any]) -> None:
    errors = [
        standard_error(low, high, level)
        for low, high, level in zip(case["lower"], case["upper"], case["level"], strict=True)
    ]
    assert errors == pytest.approx(case["sei"], rel=1e-12)
    pooled = pool_log_ratios(case["hr"], errors, case["method"], case["test"] == "knha")
    assert pooled.tau2 == pytest.approx(case["tau2"], abs=1e-9)
    assert math.log(pooled.random.estimate) == pytest.approx(case["mu"], abs=1e-9)
    assert [math.log(pooled.random.lower), math.log(pooled.random.upper)] == pytest.approx(
        case["ci"], abs=1e-9
    )
    assert [math.log(pooled.prediction.lower), math.log(pooled.prediction.upper)] == pytest.approx(
        case["pi"], abs=1e-9
    )
    assert pooled.p_value == pytest.approx(case["pval"], rel=1e-8)
    assert pooled.i2 == pytest.approx(case["i2"], abs=1e-9)
    assert pooled.q == pytest.approx(case["q"], rel=1e-10)
    assert pooled.p_heterogeneity == pytest.approx(case["qp"], rel=1e-8)
    assert pooled.weights == pytest.approx(case["weights"], abs=1e-9)
    assert math.log(pooled.fixed.estimate) == pytest.approx(case["fixed"], abs=1e-10)
    assert [math.log(pooled.fixed.lower), math.log(pooled.fixed.upper)] == pytest.approx(
        case["fixed_ci"], abs=1e-10
    )
