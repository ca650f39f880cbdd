"""Kaplan–Meier, quantiles and log-rank against lifelines (random data, ties, censoring), a
published dataset, and R survival's own quantile test."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from scipy.stats import chi2

from service.analytics.survival.estimators import kaplan_meier, log_rank, quantile, survival_at

# Freireich et al. (1963) 6-MP vs placebo remission durations (weeks), as tabulated by Gehan
# (1965) and in Kleinbaum & Klein, "Survival Analysis" (3rd ed.), Table 2.1 / §2.
SIX_MP_TIMES = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
SIX_MP_EVENTS = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PLACEBO_TIMES = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def test_published_six_mp_estimates() -> None:
    km = kaplan_meier(np.array(SIX_MP_TIMES), np.array(SIX_MP_EVENTS), "log")
    printed = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    for time, value in printed.items():
        assert round(survival_at(km, time)[0], 3) == value  # type: ignore[index]
    assert quantile(km) == (23.0, 16.0, None)  # R: median 23, 0.95 LCL 16, UCL NA (conf.type "log")
    placebo = kaplan_meier(np.array(PLACEBO_TIMES), np.ones(21), "log")
    assert quantile(placebo)[0] == 8.0


def test_published_six_mp_log_rank() -> None:
    # Kleinbaum & Klein report log-rank chi-square 16.79 (p < 0.0001); R survdiff: 16.8 on 1 df, p = 4e-05.
    result = log_rank(
        [(np.array(SIX_MP_TIMES), np.array(SIX_MP_EVENTS)), (np.array(PLACEBO_TIMES), np.ones(21))]
    )
    assert result is not None
    assert round(result.chi_square, 2) == 16.79 and result.df == 1
    assert result.p_value == pytest.approx(4.1688e-05, rel=1e-3)
    assert result.observed == [9.0, 21.0] and round(result.expected[0], 2) == 19.25


def test_r_survival_quantile_test_case() -> None:
    # therneau/survival tests/quantile.R: flats exactly at a quantile give the midpoint.
    km = kaplan_meier(np.array([9, 1, 1, 6, 6, 8, 10]), np.array([1, 1, 0, 1, 1, 0, 0]), "log")
    probabilities = [1 / 14, 1 / 7, 1 / 3, 0.5, 26 / 35, 0.9]
    results = [quantile(km, p) for p in probabilities]
    assert [r[0] for r in results] == [1, 3.5, 6, 9, 9.5, None]
    assert [r[1] for r in results] == [1, 1, 1, 6, 6, 9]
    assert [r[2] for r in results] == [None] * 6


def test_median_is_midpoint_of_a_flat_at_one_half() -> None:
    # S drops to exactly 0.5 at t=2 and stays until t=5: median (2 + 5) / 2.
    km = kaplan_meier(np.array([1, 2, 5, 7]), np.array([1, 1, 1, 1]), "log-log")
    assert quantile(km)[0] == 3.5


times_strategy = st.lists(st.tuples(st.integers(0, 60), st.booleans()), min_size=1, max_size=60)


def _lifelines(times: list[int], events: list[bool]) -> KaplanMeierFitter:
    return KaplanMeierFitter().fit(np.array(times, dtype=float), np.array(events, dtype=bool))


@settings(max_examples=200, deadline=None)
@given(times_strategy)
def test_curve_equals_lifelines(data: list[tuple[int, bool]]) -> None:
    times, events = [t for t, _ in data], [e for _, e in data]
    km = kaplan_meier(np.array(times), np.array(events), "log-log")
    reference = _lifelines(times, events)
    table = (
        reference.event_table.drop(index=0.0, errors="ignore") if 0 not in times else reference.event_table
    )
    assert list(km.time) == list(table.index)
    assert list(km.n_risk) == list(table["at_risk"])
    assert list(km.n_event) == list(table["observed"])
    assert list(km.n_censor) == list(table["censored"])
    expected = reference.survival_function_.loc[km.time, "KM_estimate"].to_numpy()
    assert np.allclose(km.surv, expected, atol=1e-9, rtol=0)
    # Pointwise log-log band (lifelines' default "exponential Greenwood") where both define it.
    ci = reference.confidence_interval_.loc[km.time]
    defined = (km.surv > 0) & (km.surv < 1)
    assert np.allclose(km.lower[defined], ci["KM_estimate_lower_0.95"].to_numpy()[defined], atol=1e-9, rtol=0)
    assert np.allclose(km.upper[defined], ci["KM_estimate_upper_0.95"].to_numpy()[defined], atol=1e-9, rtol=0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 100, allow_nan=False), st.booleans()), min_size=1, max_size=50))
def test_median_equals_lifelines_when_no_flat_sits_at_one_half(data: list[tuple[float, bool]]) -> None:
    times, events = [t for t, _ in data], [e for _, e in data]
    km = kaplan_meier(np.array(times), np.array(events), "log-log")
    on_flat = np.any(np.abs(km.surv - 0.5) < 1e-9)
    reference = _lifelines(times, events).median_survival_time_
    median = quantile(km)[0]
    if on_flat:
        return  # lifelines takes the start of the flat; R (and we) take its midpoint - tested above
    if math.isinf(reference):
        assert median is None
    else:
        assert median == pytest.approx(reference, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(st.lists(times_strategy, min_size=2, max_size=4))
def test_log_rank_equals_lifelines(groups: list[list[tuple[int, bool]]]) -> None:
    samples = [(np.array([t for t, _ in g], float), np.array([e for _, e in g], bool)) for g in groups]
    ours = log_rank(samples)
    durations = np.concatenate([t for t, _ in samples])
    observed = np.concatenate([e for _, e in samples])
    labels = np.concatenate([[i] * len(t) for i, (t, _) in enumerate(samples)])
    reference = multivariate_logrank_test(durations, labels, observed)
    if ours is None:
        # Undefined (no events, or fewer than two groups ever at risk at an event): R reports
        # 0 on 0 df; lifelines reports a zero statistic.
        assert reference.test_statistic == pytest.approx(0.0, abs=1e-9)
        return
    assert ours.chi_square == pytest.approx(reference.test_statistic, rel=1e-9, abs=1e-9)
    if all(e > 0 for e in ours.expected):
        assert ours.df == reference.degrees_of_freedom
        assert ours.p_value == pytest.approx(reference.p_value, rel=1e-9, abs=1e-12)
    else:
        # A group never at risk at an event time: R survdiff counts only groups with expected
        # events > 0 in the degrees of freedom; lifelines counts every group.
        assert ours.df == sum(e > 0 for e in ours.expected) - 1
        assert ours.p_value == pytest.approx(float(chi2.sf(ours.chi_square, ours.df)), rel=1e-12)


def test_edge_cases_answer_without_errors() -> None:
    single = kaplan_meier(np.array([5.0]), np.array([True]))
    assert list(single.surv) == [0.0] and quantile(single)[0] == 5.0
    censored = kaplan_meier(np.array([3.0, 4.0]), np.array([False, False]))
    assert list(censored.surv) == [1.0, 1.0] and quantile(censored) == (None, None, None)
    empty = kaplan_meier(np.array([]), np.array([]))
    assert empty.time.size == 0 and quantile(empty)[0] is None and survival_at(empty, 10) is None
    assert log_rank([(np.array([1.0]), np.array([True])), (np.array([]), np.array([]))]) is None
