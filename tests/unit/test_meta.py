"""Pooled proportions against statsmodels' DerSimonian–Laird (combine_effects)."""

import json
import math
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.meta_analysis import combine_effects

from service.analytics.pooling.meta import back_transform, double_arcsine, pool_proportions, transformed


@st.composite
def studies(draw: st.DrawFn) -> list[tuple[int, int]]:
    k = draw(st.integers(2, 8))
    rows = []
    for _ in range(k):
        n = draw(st.integers(1, 200))
        rows.append((draw(st.integers(0, n)), n))
    return rows


@settings(max_examples=200, deadline=None)
@given(studies(), st.sampled_from(["logit", "freeman-tukey"]))
def test_dersimonian_laird_equals_statsmodels(rows: list[tuple[int, int]], transform: str) -> None:
    events, totals = [x for x, _ in rows], [n for _, n in rows]
    ours = pool_proportions(events, totals, transform)  # type: ignore[arg-type]
    y, v, _ = transformed(np.array(events, float), np.array(totals, float), transform)  # type: ignore[arg-type]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels divides by a zero tau2 + v
        reference = combine_effects(y, v, method_re="dl")
    harmonic = len(totals) / sum(1 / n for n in totals)
    assert ours is not None
    assert ours.q == pytest.approx(float(reference.q), rel=1e-9, abs=1e-12)
    expected_fe = back_transform(float(reference.mean_effect_fe), transform, harmonic)  # type: ignore[arg-type]
    assert ours.fixed.estimate == pytest.approx(expected_fe, abs=1e-9)
    if reference.tau2 > 0:
        assert ours.tau2 == pytest.approx(float(reference.tau2), rel=1e-9)
        assert ours.i2 == pytest.approx(float(reference.i2), rel=1e-9, abs=1e-12)
        expected_re = back_transform(float(reference.mean_effect_re), transform, harmonic)  # type: ignore[arg-type]
        assert ours.random.estimate == pytest.approx(expected_re, abs=1e-9)
    else:
        # DerSimonian & Laird truncate tau² at 0 (statsmodels returns the negative moment
        # estimate): the random-effects estimate is then the fixed-effect one.
        assert ours.tau2 == 0.0 and ours.i2 == 0.0
        assert ours.random.estimate == pytest.approx(ours.fixed.estimate, abs=1e-12)


def test_continuity_correction_only_for_zero_and_full_rows() -> None:
    y, v, corrected = transformed(np.array([0.0, 5.0, 10.0]), np.array([10.0, 10.0, 10.0]), "logit")
    assert corrected == 2
    assert y[0] == pytest.approx(np.log(0.5 / 10.5)) and v[1] == pytest.approx(1 / 5 + 1 / 5)


def test_single_study_has_no_heterogeneity() -> None:
    result = pool_proportions([3], [10])
    assert result is not None and result.tau2 == 0.0 and result.df == 0 and result.p_heterogeneity is None
    assert result.random.estimate == pytest.approx(0.3)


def test_freeman_tukey_back_transform_recovers_a_single_proportion() -> None:
    result = pool_proportions([30], [100], "freeman-tukey")
    assert result is not None and result.random.estimate == pytest.approx(0.3, abs=2e-3)


def test_no_patients_no_pooling() -> None:
    assert pool_proportions([0], [0]) is None


FIXTURES = Path(__file__).parent.parent / "fixtures" / "r"


@pytest.mark.parametrize(
    "case",
    json.loads((FIXTURES / "freeman_tukey.json").read_text())["cases"],
    ids=lambda case: case["name"],
)
def test_freeman_tukey_pooling_equals_metafor(case: dict[str, Any]) -> None:
    """metafor rma(measure='PFT', method='DL'|'FE') + predict(transf=transf.ipft.hm), from the
    committed R script tests/fixtures/r/freeman_tukey.R."""
    result = pool_proportions(case["events"], case["totals"], "freeman-tukey")
    assert result is not None
    for pooled, expected in ((result.random, case["random"]), (result.fixed, case["fixed"])):
        assert [pooled.estimate, pooled.lower, pooled.upper] == pytest.approx(expected, abs=1e-9)
    # tau² on metafor's PFT scale (the audit found it 4 times metafor's on the unhalved sum)
    assert result.tau2 == pytest.approx(case["tau2_halved_scale"], rel=1e-9, abs=1e-15)


def test_freeman_tukey_back_transform_is_clamped_outside_the_attainable_range() -> None:
    n = 10.0
    assert back_transform(double_arcsine(0, n) - 1e-9, "freeman-tukey", n) == 0.0
    assert back_transform(double_arcsine(n, n) + 1e-9, "freeman-tukey", n) == 1.0
    inside = [
        back_transform(t, "freeman-tukey", n)
        for t in np.linspace(double_arcsine(0, n), double_arcsine(n, n), 50)
    ]
    assert inside == sorted(inside)


SENSITIVITY = json.loads((Path(__file__).parents[1] / "fixtures/r/meta_sensitivity.json").read_text())


@pytest.mark.parametrize("case", SENSITIVITY["cases"], ids=lambda c: f"{c['measure']} {c['method']}")
def test_leave_one_out_and_cumulative_equal_metafor(case: dict[str, Any]) -> None:
    from service.analytics.pooling.meta import cumulative, leave_one_out

    transform = "logit" if case["measure"] == "PLO" else "freeman-tukey"
    xi, ni = SENSITIVITY["xi"], SENSITIVITY["ni"]
    pool = partial(pool_proportions, transform=transform, tau2_method=case["method"])
    rows = list(zip(xi, ni, strict=True))  # already in year order

    def pool_rows(subset: list[tuple[int, int]]) -> Any:
        return pool([x for x, _ in subset], [n for _, n in subset])

    views = {
        "leave1out": leave_one_out(rows, pool_rows, lambda row: row[1] > 0),
        "cumul": cumulative(rows, pool_rows, lambda row: row[1] > 0),
    }
    for name, results in views.items():
        expected = case[name]
        for i, result in enumerate(results):
            if result is None:  # fewer than two studies: no pool (metafor reports the one study)
                assert name == "cumul" and i == 0
                continue
            assert result.tau2 == pytest.approx(expected["tau2"][i], abs=1e-6), (name, i)
            if transform == "logit":
                expit = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
                assert result.random.estimate == pytest.approx(expit(expected["estimate"][i]), abs=1e-8)
                assert result.random.lower == pytest.approx(expit(expected["ci_lb"][i]), abs=1e-8)
                assert result.random.upper == pytest.approx(expit(expected["ci_ub"][i]), abs=1e-8)
