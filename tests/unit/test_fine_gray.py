"""Fine–Gray regression against R cmprsk::crr (tests/fixtures/r/fine_gray.R): coefficients and
the robust variance, on data with ties between causes and censorings."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analytics.competing_risks.fine_gray import fine_gray

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/fine_gray.json").read_text())
DATA = FIXTURE["data"]
COLUMNS = {
    "age": np.array(DATA["age"], float),
    "male": np.array(DATA["male"], float),
    "adverse": np.array([r == "adverse" for r in DATA["risk"]], float),
    "favourable": np.array([r == "favourable" for r in DATA["risk"]], float),
}


@pytest.mark.parametrize(
    "case", FIXTURE["fine_gray"], ids=lambda c: f"cause {c['cause'][0]}: {'+'.join(c['columns'])}"
)
def test_fine_gray_equals_crr(case: dict[str, Any]) -> None:
    cause = case["cause"][0]
    status = np.array(DATA["fstatus"])
    recoded = np.where(status == cause, 1, np.where(status == 0, 0, 2))
    x = np.column_stack([COLUMNS[c] for c in case["columns"]])
    fit = fine_gray(np.array(DATA["ftime"], float), recoded, x)
    assert fit.converged
    assert fit.coef == pytest.approx(case["coef"], abs=1e-7)
    # crr stops on its gradient criterion (its first case reports converged = FALSE at gtol 1e-10,
    # rounding-bound): its variance is that far from the maximum, ~1e-8 relative
    assert fit.var == pytest.approx(np.array(case["var"]).reshape(len(case["coef"]), -1), rel=1e-7, abs=1e-10)
    assert fit.loglik == pytest.approx(case["loglik"][0], abs=1e-8)
    assert fit.loglik_null == pytest.approx(case["loglik_null"][0], abs=1e-8)
