"""Cumulative incidence of relapse and non-relapse mortality through the API, on both
databases, against R cmprsk::cuminc (the "api cohort" of tests/fixtures/r/competing_risks.R),
and the reported-result check of a printed cumulative incidence."""

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.analytics.estimands import endpoints as estimands
from tests import factories as f

API = "/api/v1"
FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/r/competing_risks.json").read_text())
COHORT = next(c for c in FIXTURE["cases"] if c["name"] == "api cohort")
EVENT = {1: "relapse", 2: "death"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]  # R writes a one-element vector as a scalar


def _build(client: TestClient[Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    s = f.study(client)
    arms = [f.arm(client, s["id"], label=f"Arm {i}") for i in (0, 1)]
    for i, (time, cause, group) in enumerate(
        zip(COHORT["time"], COHORT["cause"], COHORT["group"], strict=True)
    ):
        p = f.patient(client, s["id"], subject_code=f"P{i}", arm_id=arms[group]["id"])
        f.response(client, p["id"], study_day=29, category="CR")
        if cause:
            f.event(client, p["id"], event_type=EVENT[cause], study_day=29 + time)
        else:
            f.event(client, p["id"], event_type="last_follow_up", study_day=29 + time)
    return s, arms


def test_cumulative_incidence_equals_cuminc(client: TestClient[Any]) -> None:
    s, arms = _build(client)
    body = client.get(
        f"{API}/studies/{s['id']}/cumulative-incidence", params={"group_by": "arm", "times": "90"}
    ).json()
    assert [g["group"]["arm_id"] for g in body["groups"]] == [a["id"] for a in arms]
    for index, group in enumerate(body["groups"]):
        for number, name in ((1, "relapse"), (2, "non_relapse_mortality")):
            expected = next(c for c in COHORT["curves"] if c["group"] == index and c["cause"] == number)
            [ours] = [c for c in group["causes"] if c["cause"] == name]
            assert [p["time"] for p in ours["curve"]] == pytest.approx(_list(expected["time"]), abs=1e-8)
            assert [p["estimate"] for p in ours["curve"]] == pytest.approx(
                _list(expected["estimate"]), abs=1e-8
            )
            assert [p["variance"] for p in ours["curve"]] == pytest.approx(
                _list(expected["variance"]), abs=1e-8
            )
    for test in body["gray_tests"]:
        number = 1 if test["cause"] == "relapse" else 2
        i = _list(COHORT["tests"]["cause"]).index(number)
        assert test["statistic"] == pytest.approx(_list(COHORT["tests"]["statistic"])[i], abs=1e-8)
        assert test["p_value"] == pytest.approx(_list(COHORT["tests"]["p"])[i], abs=1e-8)
    assert {t["cause"] for t in body["gray_tests"]} == {"relapse", "non_relapse_mortality"}
    landmark = body["groups"][0]["causes"][0]["landmarks"][0]
    assert landmark["day"] == 90 and 0 < landmark["lower"] < landmark["estimate"] < landmark["upper"] < 1


def test_an_undated_relapse_withholds_the_landmarks(client: TestClient[Any]) -> None:
    s = f.study(client)
    for code, day in (("A", 90), ("B", None), ("C", 0)):
        p = f.patient(client, s["id"], subject_code=code)
        f.response(client, p["id"], study_day=29, category="CR")
        if day == 0:
            f.event(client, p["id"], event_type="last_follow_up", study_day=300)
        else:
            f.event(client, p["id"], event_type="relapse", study_day=day, timing_text="within six months")
    body = client.get(f"{API}/studies/{s['id']}/cumulative-incidence", params={"times": "183"}).json()
    [group] = body["groups"]
    # withheld, not estimated from the two dated patients: B's relapse is an event on an unknown day
    assert group["n"] == 2 and group["excluded"] == {estimands.UNDATED_EVENT: 1}
    assert group["not_computable"] is not None
    assert all(c["curve"] == [] and c["events"] is None for c in group["causes"])
    assert all(c["landmarks"][0]["estimate"] is None for c in group["causes"])
    assert body["undated_events"] == {"rule": "withhold", "patients": 1, "subject_codes": ["B"]}
    excluded = client.get(
        f"{API}/studies/{s['id']}/cumulative-incidence", params={"times": "183", "undated_events": "exclude"}
    ).json()
    [group] = excluded["groups"]
    assert group["n"] == 2 and group["not_computable"] is None
    assert [c["events"] for c in group["causes"]] == [1, 0]
    assert group["causes"][0]["landmarks"][0]["estimate"] == pytest.approx(0.5)
    assert excluded["undated_events"] == {"rule": "exclude", "patients": 1, "subject_codes": ["B"]}
    assert any("can bias" in w and "(B)" in w for w in excluded["warnings"])
    assert "left out" in excluded["method"]["undated_events"]


def test_a_printed_cumulative_incidence_is_reconciled(client: TestClient[Any]) -> None:
    s, _ = _build(client)
    # by day 183 (t = 154): relapses at t = 30, 60, 100 in arm 0 and t = 160 not yet in arm 1
    body = client.get(f"{API}/studies/{s['id']}/cumulative-incidence", params={"times": "183"}).json()
    value = round(100 * body["groups"][0]["causes"][0]["landmarks"][0]["estimate"], 1)
    for printed in (value, value + 10):
        f.create(
            client,
            "reported-results",
            {
                "study_id": s["id"],
                "measure": f"6-month cumulative relapse {printed}",
                "value": printed,
                "unit": "%",
                "provenance": [{"source_document": "x.txt", "location": "Table 1", "quote": f"{printed}%"}],
                "definition": {"type": "cumulative_incidence", "cause": "relapse", "landmark_day": 183},
            },
        )
    checks = client.get(f"{API}/studies/{s['id']}/reconciliation/").json()["results"]
    verdicts = {
        r["measure"]: next(c["verdict"] for c in r["checks"] if c["check"] == "patient_level") for r in checks
    }
    assert verdicts == {
        f"6-month cumulative relapse {value}": "consistent",
        f"6-month cumulative relapse {value + 10}": "inconsistent",
    }
