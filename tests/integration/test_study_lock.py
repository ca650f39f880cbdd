"""A locked study refuses every write to it and its records (409 naming the lock), through
every route that writes — single records, cascades, imports — until an admin unlocks it; reads
and analyses go on, and the lock and unlock are in the audit trail."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f
from tests.databases import issue_token
from tests.integration.test_seed import get_all

API = "/api/v1"
REASON = "Data cut for the 2027 ASH abstract"


def _world(client: TestClient[Any]) -> dict[str, Any]:
    study = f.study(client, title="Locked study")
    arm = f.arm(client, study["id"])
    site = f.site(client, study["id"], code="L1")
    patient = f.patient(client, study["id"], subject_code="L-1", arm_id=arm["id"])
    event = f.event(client, patient["id"], event_type="death", study_day=100)
    adverse_event = f.adverse_event(client, patient["id"])
    treatment = f.treatment(client, patient["id"])
    other = f.study(client, title="Open study")
    return {
        "study": study,
        "arm": arm,
        "site": site,
        "patient": patient,
        "event": event,
        "adverse_event": adverse_event,
        "treatment": treatment,
        "other": other,
    }


def _etag(client: TestClient[Any], path: str) -> str:
    return str(client.get(f"{API}/{path}").headers["etag"])


def _patch(client: TestClient[Any], path: str, body: dict[str, Any]) -> Any:
    return client.patch(f"{API}/{path}", json=body, headers={"If-Match": _etag(client, path)})


def _delete(client: TestClient[Any], path: str, **params: Any) -> Any:
    return client.delete(f"{API}/{path}", params=params, headers={"If-Match": _etag(client, path)})


WRITES: dict[str, Callable[[TestClient[Any], dict[str, Any]], Any]] = {
    "update the study": lambda c, w: _patch(c, f"studies/{w['study']['id']}", {"title": "Changed"}),
    "delete the study": lambda c, w: _delete(c, f"studies/{w['study']['id']}", cascade="true"),
    "create an arm": lambda c, w: c.post(
        f"{API}/arms", json={"study_id": w["study"]["id"], "label": "Arm B"}
    ),
    "update a site": lambda c, w: _patch(c, f"sites/{w['site']['id']}", {"city": "Lyon"}),
    "create a patient": lambda c, w: c.post(
        f"{API}/patients", json={"study_id": w["study"]["id"], "subject_code": "L-2", "diagnosis": "AML"}
    ),
    "update an outcome": lambda c, w: _patch(c, f"outcomes/{w['event']['id']}", {"study_day": 120}),
    "delete an adverse event": lambda c, w: _delete(c, f"adverse-events/{w['adverse_event']['id']}"),
    "create a treatment": lambda c, w: c.post(
        f"{API}/treatments", json={"patient_id": w["patient"]["id"], "phase": "consolidation"}
    ),
    # A child's create reads its patient and the study's lock in one statement.
    "create an adverse event": lambda c, w: c.post(
        f"{API}/adverse-events",
        json={"patient_id": w["patient"]["id"], "term": "Nausea", "grade": 1, "grading_system": "CTCAE_v5"},
    ),
    "create an outcome": lambda c, w: c.post(
        f"{API}/outcomes", json={"patient_id": w["patient"]["id"], "kind": "event", "event_type": "relapse"}
    ),
    "delete a patient": lambda c, w: _delete(c, f"patients/{w['patient']['id']}", cascade="true"),
    "create a reported result": lambda c, w: c.post(
        f"{API}/reported-results",
        json={
            "study_id": w["study"]["id"],
            "measure": "CR rate",
            "value": 50,
            "provenance": [{"source_document": "paper.txt", "location": "Table 1", "quote": "CR 50%"}],
        },
    ),
}


def _lock(client: TestClient[Any], study_id: str, reason: str = REASON) -> Any:
    return client.post(f"{API}/studies/{study_id}/lock", json={"reason": reason})


def _snapshot(client: TestClient[Any], study_id: str) -> dict[str, Any]:
    return {
        "study": client.get(f"{API}/studies/{study_id}").json(),
        **{
            kind: get_all(client, kind, study_id=study_id)
            for kind in ("arms", "sites", "patients", "reported-results")
        },
        "audit": client.get(f"{API}/audit", params={"study_id": study_id, "limit": 1}).json()["total"],
    }


@pytest.mark.parametrize("write", list(WRITES))
def test_a_locked_study_refuses_every_write(client: TestClient[Any], write: str) -> None:
    world = _world(client)
    study_id = world["study"]["id"]
    locked = _lock(client, study_id)
    assert locked.status_code == 200, locked.text
    assert locked.json()["lock"]["reason"] == REASON
    before = _snapshot(client, study_id)
    refused = WRITES[write](client, world)
    assert refused.status_code == 409, (write, refused.text)
    problem = refused.json()
    assert problem["type"].endswith("study-locked")
    assert REASON in problem["detail"] and "test-admin" in problem["detail"]
    assert _snapshot(client, study_id) == before
    # Reads and analyses go on.
    assert client.get(f"{API}/studies/{study_id}/survival").status_code == 200
    # Unlocked, the same write goes through.
    unlocked = client.delete(
        f"{API}/studies/{study_id}/lock", headers={"X-Change-Reason": "abstract submitted"}
    )
    assert unlocked.status_code == 200 and unlocked.json()["lock"] is None
    assert WRITES[write](client, world).status_code in (200, 201, 204)


def test_the_lock_leaves_other_studies_and_the_catalogue_open(client: TestClient[Any]) -> None:
    world = _world(client)
    assert _lock(client, world["study"]["id"]).status_code == 200
    assert _patch(client, f"studies/{world['other']['id']}", {"title": "Still open"}).status_code == 200
    f.patient(client, world["other"]["id"], subject_code="O-2")
    f.agent(client, name=f"agent-{uuid.uuid4().hex[:6]}")


def test_lock_and_unlock_are_audited_and_admin_only(client: TestClient[Any], database_url: str) -> None:
    study_id = _world(client)["study"]["id"]
    curator = issue_token(database_url, f"cur-{uuid.uuid4().hex[:6]}", "curator")
    as_curator = {"Authorization": f"Bearer {curator}"}
    assert (
        client.post(f"{API}/studies/{study_id}/lock", json={"reason": "x"}, headers=as_curator).status_code
        == 403
    )
    assert client.post(f"{API}/studies/{study_id}/lock", json={"reason": ""}).status_code == 400
    assert client.delete(f"{API}/studies/{study_id}/lock").status_code == 409  # not locked
    assert _lock(client, study_id).status_code == 200
    again = _lock(client, study_id, "another reason")
    assert again.status_code == 409 and REASON in again.json()["detail"]
    assert client.delete(f"{API}/studies/{study_id}/lock", headers=as_curator).status_code == 403
    assert (
        client.delete(f"{API}/studies/{study_id}/lock", headers={"X-Change-Reason": "published"}).status_code
        == 200
    )
    records = client.get(
        f"{API}/audit", params={"resource_type": "study", "resource_id": study_id, "action": "update"}
    ).json()["items"]
    locks = [r for r in records if "lock" in r["changes"]]
    assert len(locks) == 2
    (locked,) = [r for r in locks if r["changes"]["lock"][0] is None]
    assert locked["reason"] == REASON and locked["changes"]["lock"][1]["reason"] == REASON
    assert locked["actor"] == "test-admin"
    (unlocked,) = [r for r in locks if r["changes"]["lock"][1] is None]
    assert unlocked["reason"] == "published"


def test_a_newer_registry_record_of_a_locked_study_is_refused(empty_target: TestClient[Any]) -> None:
    from tests.integration.test_ctgov_versions import _newer, _post, _record

    first, _ = _post(empty_target, _record())
    study_id = first.json()["study_id"]
    assert _lock(empty_target, study_id).status_code == 200
    refused, _ = _post(empty_target, _newer(_record()))
    assert refused.status_code == 409 and refused.json()["type"].endswith("study-locked")
    assert len(empty_target.get(f"{API}/studies/{study_id}/source-records").json()["items"]) == 1


def test_a_link_to_a_patient_of_a_locked_study_is_refused(client: TestClient[Any]) -> None:
    world = _world(client)
    outside = f.patient(client, world["other"]["id"], subject_code="O-3")
    assert _lock(client, world["study"]["id"]).status_code == 200
    for a, b in ((outside["id"], world["patient"]["id"]), (world["patient"]["id"], outside["id"])):
        refused = client.post(
            f"{API}/patient-links", json={"patient_a_id": a, "patient_b_id": b, "decision": "same"}
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("study-locked")


def test_a_curator_of_the_study_is_refused_a_child_of_its_locked_study(
    client: TestClient[Any], database_url: str
) -> None:
    """A grant's curator reads the patient through its scope (a statement of its own) and still
    gets the study's lock with it: refused in the locked study, admitted in the open one."""
    world = _world(client)
    open_patient = f.patient(client, world["other"]["id"], subject_code="O-4")
    secret = issue_token(
        database_url,
        f"lock-{uuid.uuid4().hex[:8]}",
        None,
        grants=[
            {"study_id": world["study"]["id"], "role": "curator"},
            {"study_id": world["other"]["id"], "role": "curator"},
        ],
    )
    as_curator = {"Authorization": f"Bearer {secret}"}
    assert _lock(client, world["study"]["id"]).status_code == 200
    body = {"term": "Nausea", "grade": 1, "grading_system": "CTCAE_v5"}
    before = _snapshot(client, world["study"]["id"])
    refused = client.post(
        f"{API}/adverse-events", json={**body, "patient_id": world["patient"]["id"]}, headers=as_curator
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("study-locked")
    assert _snapshot(client, world["study"]["id"]) == before
    admitted = client.post(
        f"{API}/adverse-events", json={**body, "patient_id": open_patient["id"]}, headers=as_curator
    )
    assert admitted.status_code == 201, admitted.text
