"""tau² by DerSimonian–Laird, REML and Paule–Mandel, Hartung–Knapp–Sidik–Jonkman intervals and
the prediction interval against R metafor (fixtures: tests/fixtures/r/meta_random_effects.R)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analytics.pooling.meta import random_effects, transformed

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_random_effects.json").read_text())
CASES = FIXTURE["cases"]
TOLERANCE = 1e-8


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['name']}-{c['measure']}-{c['method']}-{c['test']}" for c in CASES]
)
def test_random_effects_equal_metafor(case: dict[str, Any]) -> None:
    y, v = np.asarray(case["yi"], float), np.asarray(case["vi"], float)
    ours = random_effects(y, v, case["method"], hksj=case["test"] == "knha", conf_level=0.95)
    assert ours.tau2 == pytest.approx(case["tau2"], abs=TOLERANCE)
    assert ours.mu == pytest.approx(case["mu"], abs=TOLERANCE)
    assert ours.se == pytest.approx(case["se"], abs=TOLERANCE)
    assert [ours.lower, ours.upper] == pytest.approx(case["ci"], abs=TOLERANCE)
    assert [ours.pi_lower, ours.pi_upper] == pytest.approx(case["pi"], abs=TOLERANCE)
    assert ours.i2 == pytest.approx(case["i2"], abs=TOLERANCE)
    assert ours.q == pytest.approx(case["q"], abs=TOLERANCE, rel=TOLERANCE)
    np.testing.assert_allclose(ours.weights, case["weights"], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c["measure"] == "PLO" and c["method"] == "DL" and c["test"] == "z"],
    ids=lambda c: c["name"],
)
def test_logit_scale_equals_escalc(case: dict[str, Any]) -> None:
    y, v, _ = transformed(np.asarray(case["xi"], float), np.asarray(case["ni"], float), "logit")
    np.testing.assert_allclose(y, case["yi"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(v, case["vi"], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c["measure"] == "PFT" and c["method"] == "DL" and c["test"] == "z"],
    ids=lambda c: c["name"],
)
def test_double_arcsine_equals_escalc(case: dict[str, Any]) -> None:
    # metafor's PFT scale (half the sum of the two arcsines), so that tau² is metafor's
    y, v, _ = transformed(np.asarray(case["xi"], float), np.asarray(case["ni"], float), "freeman-tukey")
    np.testing.assert_allclose(y, np.asarray(case["yi"]), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(v, np.asarray(case["vi"]), atol=TOLERANCE, rtol=0)
