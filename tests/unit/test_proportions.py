"""Proportion intervals and 2×k tests against statsmodels and scipy (reference implementations)."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from service.analytics.proportions.intervals import chi_square_independence, fisher_two_groups, proportion_ci

STATSMODELS_NAME = {
    "wilson": "wilson",
    "agresti-coull": "agresti_coull",
    "clopper-pearson": "beta",
    "jeffreys": "jeffreys",
}
LEVELS = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@st.composite
def counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, 500))
    return draw(st.integers(0, n)), n


@settings(max_examples=300)
@given(counts(), LEVELS, st.sampled_from(sorted(STATSMODELS_NAME)))
def test_intervals_equal_statsmodels(xn: tuple[int, int], level: float, method: str) -> None:
    x, n = xn
    ours = proportion_ci(x, n, method, level)  # type: ignore[arg-type]
    low, high = proportion_confint(x, n, alpha=1 - level, method=STATSMODELS_NAME[method])
    if method == "jeffreys":
        # Brown, Cai & DasGupta's Jeffreys interval sets the bound to 0 (x = 0) or 1 (x = n);
        # statsmodels keeps the beta quantile there.
        low = 0.0 if x == 0 else low
        high = 1.0 if x == n else high
    assert ours is not None
    assert ours[0] == pytest.approx(low, abs=1e-9)
    assert ours[1] == pytest.approx(high, abs=1e-9)


def test_published_wilson_example() -> None:
    # Brown, Cai & DasGupta (2001) discuss n = 20; the Wilson 95% interval for 0/20 is [0, 0.1611].
    low, high = proportion_ci(0, 20, "wilson", 0.95)  # type: ignore[misc]
    assert low == 0.0 and round(high, 4) == 0.1611


def test_zero_patients_has_no_interval() -> None:
    assert proportion_ci(0, 0, "wilson", 0.95) is None


def test_all_and_none_respond_give_closed_bounds() -> None:
    assert proportion_ci(13, 13, "clopper-pearson", 0.95)[1] == 1.0  # type: ignore[index]
    assert proportion_ci(0, 13, "jeffreys", 0.95)[0] == 0.0  # type: ignore[index]


@settings(max_examples=200)
@given(counts(), counts())
def test_fisher_equals_scipy(a: tuple[int, int], b: tuple[int, int]) -> None:
    p, odds = fisher_two_groups(a[0], a[1], b[0], b[1])
    reference = stats.fisher_exact([[a[0], a[1] - a[0]], [b[0], b[1] - b[0]]])
    assert p == pytest.approx(float(reference.pvalue), abs=1e-12)
    expected = float(reference.statistic)
    assert odds == (pytest.approx(expected, rel=1e-12) if math.isfinite(expected) else None)


def test_fisher_on_the_seed_crs_comparison() -> None:
    # 004_99c9fed070f33cc4.txt prints p = 0.226 for CRS 5/8 vs 1/5; Fisher's exact gives 0.2657.
    p, _ = fisher_two_groups(5, 8, 1, 5)
    assert round(p, 4) == 0.2657


@settings(max_examples=100)
@given(st.lists(counts(), min_size=3, max_size=5))
def test_chi_square_equals_scipy(groups: list[tuple[int, int]]) -> None:
    table = [[x, n - x] for x, n in groups]
    result = chi_square_independence(groups)
    if any(sum(col) == 0 for col in zip(*table, strict=True)):
        assert result is None
        return
    reference = stats.chi2_contingency(table, correction=False)
    assert result is not None
    assert result[0] == pytest.approx(float(reference.statistic), rel=1e-9, abs=1e-12)
    assert result[1] == reference.dof
    assert result[2] == pytest.approx(float(reference.pvalue), rel=1e-9, abs=1e-12)


R_INTERVALS = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "r" / "proportion_intervals.json").read_text()
)["cases"]


@pytest.mark.parametrize("case", R_INTERVALS, ids=lambda c: f"{c['x']}/{c['n']}")
@pytest.mark.parametrize("method", ["wilson-cc", "mid-p"])
def test_continuity_corrected_and_mid_p_intervals_equal_r(case: dict[str, Any], method: str) -> None:
    """R prop.test (Wilson with continuity correction) and the mid-p exact interval, from the
    committed script tests/fixtures/r/proportion_intervals.R."""
    interval = proportion_ci(case["x"], case["n"], method, 0.95)  # type: ignore[arg-type]
    assert interval == pytest.approx(tuple(case[method]), abs=1e-9)
