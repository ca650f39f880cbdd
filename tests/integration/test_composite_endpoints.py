"""Composite endpoints (EFS, GRFS, CRD) and GVHD events, end to end on both databases: which
events each counts, from which origin, and who is left out and why."""

from typing import Any

import pytest
from litestar.testing import TestClient

from service.analytics.estimands import endpoints as estimands
from tests import factories as f

API = "/api/v1"


def _cohort(client: TestClient[Any]) -> dict[str, Any]:
    s = f.study(client)

    def patient(code: str) -> str:
        return str(f.patient(client, s["id"], subject_code=code)["id"])

    p1 = patient("P1")  # CR, severe acute GVHD on day 60, relapse on day 150
    f.response(client, p1, study_day=29, category="CR")
    f.event(client, p1, event_type="gvhd", study_day=60, gvhd_kind="acute", gvhd_grade=3)
    f.event(client, p1, event_type="relapse", study_day=150)
    p2 = patient("P2")  # CR, chronic GVHD without systemic therapy, death on day 200
    f.response(client, p2, study_day=29, category="CRi")
    f.event(
        client,
        p2,
        event_type="gvhd",
        study_day=100,
        gvhd_kind="chronic",
        gvhd_severity="mild",
        gvhd_systemic_therapy=False,
    )
    f.event(client, p2, event_type="death", study_day=200)
    p3 = patient("P3")  # refractory: NR, followed to day 90
    f.response(client, p3, study_day=29, category="NR")
    f.event(client, p3, event_type="last_follow_up", study_day=90)
    p4 = patient("P4")  # never assessed, followed to day 50
    f.event(client, p4, event_type="last_follow_up", study_day=50)
    p5 = patient("P5")  # CRh, relapse on day 80
    f.response(client, p5, study_day=29, category="CRh")
    f.event(client, p5, event_type="relapse", study_day=80)
    p6 = patient("P6")  # CR, grade 2 acute GVHD, chronic GVHD needing systemic therapy on day 250
    f.response(client, p6, study_day=29, category="CR")
    f.event(client, p6, event_type="gvhd", study_day=40, gvhd_kind="acute", gvhd_grade=2)
    f.event(
        client,
        p6,
        event_type="gvhd",
        study_day=250,
        gvhd_kind="chronic",
        gvhd_severity="moderate",
        gvhd_systemic_therapy=True,
    )
    f.event(client, p6, event_type="last_follow_up", study_day=300)
    return s


def _rows(
    client: TestClient[Any], study_id: str, endpoint: str
) -> tuple[dict[str, tuple[int, int, bool, str]], dict[str, str]]:
    body = client.get(f"{API}/studies/{study_id}/time-to-event", params={"endpoint": endpoint}).json()
    rows = {
        r["subject_code"]: (r["origin_day"], r["end_day"], r["event"], r["event_or_censoring"])
        for r in body["rows"]
    }
    return rows, {e["subject_code"]: e["reason"] for e in body["excluded"]}


def test_each_endpoint_counts_its_own_events_from_its_own_origin(client: TestClient[Any]) -> None:
    s = _cohort(client)
    censored = estimands.CENSORED
    rows, excluded = _rows(client, s["id"], "EFS")
    assert rows == {
        "P1": (1, 150, True, "relapse"),
        "P2": (1, 200, True, "death"),
        "P3": (1, 1, True, "induction_failure"),
        "P5": (1, 80, True, "relapse"),
        "P6": (1, 300, False, censored),
    }
    assert excluded == {"P4": estimands.NOT_ASSESSED}

    rows, excluded = _rows(client, s["id"], "GRFS")
    assert rows == {
        "P1": (1, 60, True, "gvhd"),  # grade 3 acute counts
        "P2": (1, 200, True, "death"),  # chronic without systemic therapy does not
        "P3": (1, 90, False, censored),
        "P4": (1, 50, False, censored),
        "P5": (1, 80, True, "relapse"),
        "P6": (1, 250, True, "gvhd"),  # grade 2 acute does not; chronic needing therapy does
    }
    assert excluded == {}

    rows, excluded = _rows(client, s["id"], "CRD")
    assert rows == {
        "P1": (29, 150, True, "relapse"),
        "P2": (29, 200, False, censored),  # death without relapse is censored
        "P6": (29, 300, False, censored),
    }
    assert set(excluded) == {"P3", "P4", "P5"}  # P5 reached only CRh

    rows, _ = _rows(client, s["id"], "RFS")
    assert rows["P2"] == (29, 200, True, "death") and rows["P5"] == (29, 80, True, "relapse")


def test_survival_reports_the_events_counted_in_its_method(client: TestClient[Any]) -> None:
    s = _cohort(client)
    body = client.get(f"{API}/studies/{s['id']}/survival", params={"endpoint": "GRFS"}).json()
    assert "GVHD" in body["method"]["GRFS"] and "systemic therapy" in body["method"]["GRFS"]
    [group] = body["groups"]
    assert (group["n"], group["events"]) == (6, 4)
    efs = client.get(f"{API}/studies/{s['id']}/survival", params={"endpoint": "EFS"}).json()
    assert efs["excluded_by_reason"] == {estimands.NOT_ASSESSED: 1}
    # the induction failure is an event at time 0
    assert efs["groups"][0]["curve"][0]["time"] == 0 and efs["groups"][0]["curve"][0]["n_event"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"event_type": "gvhd"}, "gvhd_kind"),
        ({"event_type": "gvhd", "gvhd_kind": "chronic", "gvhd_grade": 3}, "gvhd_grade"),
        ({"event_type": "gvhd", "gvhd_kind": "acute", "gvhd_severity": "mild"}, "gvhd_severity"),
        ({"event_type": "relapse", "gvhd_kind": "acute"}, "gvhd_kind"),
        ({"event_type": "gvhd", "gvhd_kind": "acute", "gvhd_grade": 5}, "gvhd_grade"),
    ],
)
def test_gvhd_details_are_checked(client: TestClient[Any], fields: dict[str, Any], field: str) -> None:
    s = f.study(client)
    p = f.patient(client, s["id"])
    before = client.get(f"{API}/outcomes", params={"patient_id": p["id"]}).json()["total"]
    response = client.post(
        f"{API}/outcomes", json={"kind": "event", "patient_id": p["id"], "study_day": 10, **fields}
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text
    assert client.get(f"{API}/outcomes", params={"patient_id": p["id"]}).json()["total"] == before
