"""Fine–Gray and cause-specific Cox regression through the API, on both databases, against R
(tests/fixtures/r/fine_gray.R): relapse and non-relapse mortality timed from the first CR."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"
R = json.loads((Path(__file__).parents[1] / "fixtures/r/fine_gray.json").read_text())
DATA = R["data"]
CR_DAY = 29


def _cohort(client: TestClient[Any]) -> str:
    s = f.study(client)
    kinds = {0: "last_follow_up", 1: "relapse", 2: "death"}
    for i, (time, status, age, male, risk) in enumerate(
        zip(DATA["ftime"], DATA["fstatus"], DATA["age"], DATA["male"], DATA["risk"], strict=True)
    ):
        p = f.patient(
            client,
            s["id"],
            subject_code=f"F{i:02d}",
            age_years=age,
            sex="male" if male else "female",
            risk_group=risk,
        )
        f.response(client, p["id"], study_day=CR_DAY, category="CR")
        f.event(client, p["id"], event_type=kinds[status], study_day=CR_DAY + time)
    return str(s["id"])


PARAMS = {
    1: {"covariates": ["age_years", "sex", "risk_group"], "reference": "risk_group:intermediate"},
    2: {"covariates": ["age_years", "sex"]},
}


@pytest.mark.parametrize(("cause", "name"), [(1, "relapse"), (2, "non_relapse_mortality")])
def test_fine_gray_and_cause_specific_cox_equal_crr_and_coxph(
    client: TestClient[Any], cause: int, name: str
) -> None:
    response = client.get(
        f"{API}/studies/{_cohort(client)}/competing-risks-model", params={**PARAMS[cause], "cause": name}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["not_computable"] is None
    status = DATA["fstatus"]
    assert (body["n"], body["events"], body["competing_events"]) == (
        len(status),
        status.count(cause),
        status.count(3 - cause),
    )
    fg = next(
        c for c in R["fine_gray"] if c["cause"] == [cause] and len(c["columns"]) == len(body["fine_gray"])
    )
    assert [t["coef"] for t in body["fine_gray"]] == pytest.approx(fg["coef"], abs=1e-7)
    variance = np.array(fg["var"]).reshape(len(fg["coef"]), -1)
    assert [t["se"] ** 2 for t in body["fine_gray"]] == pytest.approx(np.diag(variance), rel=1e-7)
    cs = next(c for c in R["cause_specific"] if c["cause"] == [cause] and c["ties"] == ["efron"])
    assert [t["coef"] for t in body["terms"]] == pytest.approx(cs["coef"], abs=1e-8)
    assert [t["se"] for t in body["terms"]] == pytest.approx(cs["se"], abs=1e-8)
    if cause == 1:
        assert [t["term"] for t in body["fine_gray"]] == [
            "age_years",
            "sex: male vs female",
            "risk_group: adverse vs intermediate",
            "risk_group: favourable vs intermediate",
        ]


def test_patients_never_in_remission_are_counted_out(client: TestClient[Any]) -> None:
    study_id = _cohort(client)
    p = f.patient(client, study_id, subject_code="NR1", age_years=40, sex="female", risk_group="adverse")
    f.response(client, p["id"], study_day=CR_DAY, category="NR")
    body = client.get(f"{API}/studies/{study_id}/competing-risks-model", params=PARAMS[2]).json()
    assert sum(body["excluded_by_reason"].values()) == 1 and body["n"] == len(DATA["ftime"])
