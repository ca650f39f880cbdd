"""Exact and small-sample inference against R (fixtures: tests/fixtures/r/exact.R) and Simon's
(1989) published designs."""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from service.analytics.designs.simon import simon_two_stage
from service.analytics.proportions.exact import (
    binomial_test,
    expected_counts_below_5,
    fisher_freeman_halton,
    fisher_odds_ratio,
    newcombe_difference,
)

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/exact.json").read_text())
TOLERANCE = 1e-8


@pytest.mark.parametrize("case", FIXTURE["binomial"], ids=lambda c: f"{c['x']}/{c['n']} vs {c['p']}")
def test_binomial_test_equals_binom_test(case: dict[str, Any]) -> None:
    x, n, p = int(case["x"]), int(case["n"]), case["p"]
    assert binomial_test(x, n, p) == pytest.approx(case["two_sided"], abs=TOLERANCE)
    assert binomial_test(x, n, p, "greater") == pytest.approx(case["greater"], abs=TOLERANCE)
    assert binomial_test(x, n, p, "less") == pytest.approx(case["less"], abs=TOLERANCE)


def _value(value: float | None) -> float:
    return math.inf if value is None else value


@pytest.mark.parametrize("case", FIXTURE["fisher"], ids=lambda c: str(c["table"]))
def test_conditional_odds_ratio_equals_fisher_test(case: dict[str, Any]) -> None:
    a, b, c, d = case["table"]
    ours = fisher_odds_ratio([[a, b], [c, d]])
    assert ours.p_value == pytest.approx(case["p"], abs=TOLERANCE)
    for mine, theirs in (
        (ours.estimate, case["estimate"]),
        (ours.lower, case["lower"]),
        (ours.upper, case["upper"]),
    ):
        if theirs is None:
            assert math.isinf(mine)
        else:
            assert mine == pytest.approx(theirs, rel=TOLERANCE, abs=TOLERANCE)
    # fisher.test itself stops its root search at ~1e-4: within 1 % of the exact root
    lower, upper = case["fisher_test_ci"]
    assert ours.lower == pytest.approx(_value(lower), rel=1e-2, abs=1e-3)
    if upper is not None:
        assert ours.upper == pytest.approx(upper, rel=1e-2)


@pytest.mark.parametrize("case", FIXTURE["rxc"], ids=lambda c: str(c["table"]))
def test_fisher_freeman_halton_equals_fisher_test_r_by_c(case: dict[str, Any]) -> None:
    assert fisher_freeman_halton(case["table"]) == pytest.approx(case["p"], abs=TOLERANCE)


def test_fisher_freeman_halton_on_2_by_2_equals_fisher() -> None:
    for case in FIXTURE["fisher"]:
        a, b, c, d = case["table"]
        assert fisher_freeman_halton([[a, b], [c, d]]) == pytest.approx(case["p"], abs=TOLERANCE)


def test_fisher_freeman_halton_refuses_a_table_too_large_to_enumerate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("service.analytics.proportions.exact.MAX_TABLES", 10)
    assert fisher_freeman_halton([[10, 10, 10], [10, 10, 10], [10, 10, 10]]) is None


def test_expected_counts_rule() -> None:
    assert expected_counts_below_5([[3, 1], [1, 3], [2, 2]]) == 6
    assert expected_counts_below_5([[30, 10], [10, 30]]) == 0


@pytest.mark.parametrize("case", FIXTURE["newcombe"], ids=lambda c: str(c["counts"]))
def test_newcombe_difference_equals_wilson_hybrid(case: dict[str, Any]) -> None:
    x1, n1, x2, n2 = (int(v) for v in case["counts"])
    result = newcombe_difference(x1, n1, x2, n2)
    assert result is not None
    assert list(result) == pytest.approx([case["difference"], case["lower"], case["upper"]], abs=TOLERANCE)


# Simon R. Optimal two-stage designs for phase II clinical trials. Control Clin Trials 1989;10:1-10,
# Table 1: (p0, p1, alpha, beta) -> optimal and minimax (r1/n1, r/n, EN(p0), PET(p0)).
SIMON_TABLE_1 = [
    ((0.10, 0.30, 0.05, 0.20), (1, 10, 5, 29, 15.0, 0.74), (1, 15, 5, 25, 19.5, 0.55)),
    ((0.20, 0.40, 0.05, 0.20), (3, 13, 12, 43, 20.6, 0.75), (4, 18, 10, 33, 22.3, 0.72)),
]


@pytest.mark.parametrize(("targets", "optimal", "minimax"), SIMON_TABLE_1, ids=lambda v: str(v))
def test_simon_two_stage_reproduces_simons_table(
    targets: tuple[float, float, float, float], optimal: tuple[Any, ...], minimax: tuple[Any, ...]
) -> None:
    found = simon_two_stage(*targets, n_max=50)
    for design, printed in zip(found, (optimal, minimax), strict=True):
        assert design is not None
        assert (design.r1, design.n1, design.r, design.n) == printed[:4]
        assert round(design.expected_n0, 1) == printed[4]
        assert round(design.early_stop0, 2) == printed[5]
        assert design.alpha <= targets[2] and design.power >= 1 - targets[3]


def test_simon_two_stage_without_a_design_in_range() -> None:
    assert simon_two_stage(0.1, 0.15, 0.05, 0.2, n_max=10) == (None, None)
