"""Cox models on counting-process (start, stop] data, transplant as a time-varying covariate,
against R (tests/fixtures/r/transplant.R): coxph on tmerge data with Efron and Breslow ties, the
Mantel–Byar (score) test, and a fixed covariate beside the time-varying one."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analytics.regression.cox import cox_fit

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/transplant.json").read_text())
INTERVALS = FIXTURE["intervals"]


def _design(with_age: bool) -> np.ndarray:
    hsct = np.array(INTERVALS["hsct"], float)
    if not with_age:
        return hsct[:, None]
    age = np.array(FIXTURE["data"]["age"], float)[np.array(INTERVALS["id"]) - 1]
    return np.column_stack([hsct, age])


@pytest.mark.parametrize(
    ("name", "ties", "with_age"),
    [("hsct_efron", "efron", False), ("hsct_breslow", "breslow", False), ("hsct_age", "efron", True)],
)
def test_counting_process_cox_equals_coxph_on_tmerge_data(name: str, ties: Any, with_age: bool) -> None:
    expected = FIXTURE[name]
    fit = cox_fit(
        np.array(INTERVALS["tstop"], float),
        np.array(INTERVALS["death"], bool),
        _design(with_age),
        start=np.array(INTERVALS["tstart"], float),
        ties=ties,
    )
    assert fit.converged
    assert fit.coef == pytest.approx(expected["coef"], abs=1e-8)
    assert fit.se == pytest.approx(expected["se"], abs=1e-8)
    assert [fit.loglik_null, fit.loglik] == pytest.approx(expected["loglik"], abs=1e-8)
    assert fit.score == pytest.approx(expected["score"], abs=1e-8)  # Mantel–Byar with one covariate
    assert fit.wald == pytest.approx(expected["wald"], abs=1e-8)
    assert fit.events == expected["events"]


def test_intervals_that_never_split_give_the_ordinary_model() -> None:
    """(0, t] rows with Efron ties through the interval code equal the ordinary path."""
    rng = np.random.default_rng(3)
    times = rng.integers(1, 30, 60).astype(float)
    events = rng.random(60) < 0.7
    x = rng.normal(size=(60, 2))
    plain = cox_fit(times, events, x)
    counted = cox_fit(times, events, x, start=np.zeros(60))
    assert counted.coef == pytest.approx(plain.coef, abs=1e-10)
    assert counted.var == pytest.approx(plain.var, abs=1e-10)


@pytest.mark.parametrize("curve", FIXTURE["simon_makuch"], ids=lambda c: c["state"])
def test_simon_makuch_curves_equal_survfit_on_the_intervals(curve: dict[str, Any]) -> None:
    from service.analytics.survival.estimators import kaplan_meier_intervals

    state = np.array(INTERVALS["hsct"]) == (1 if curve["state"] == "transplanted" else 0)
    km = kaplan_meier_intervals(
        np.array(INTERVALS["tstart"], float)[state],
        np.array(INTERVALS["tstop"], float)[state],
        np.array(INTERVALS["death"], bool)[state],
    )
    assert list(km.time) == curve["time"]
    assert list(km.n_risk) == curve["n_risk"]
    assert list(km.n_event) == curve["n_event"]
    assert km.surv == pytest.approx(curve["surv"], abs=1e-12)
    # R gives NA where S(t) reaches 0, and the service a standard error it reports as null
    finite = [None if not np.isfinite(v) else float(v) for v in km.std_err]
    assert [v is None for v in finite] == [v is None for v in curve["std_err"]]
    assert [v for v in finite if v is not None] == pytest.approx(
        [v for v in curve["std_err"] if v is not None], abs=1e-12
    )
