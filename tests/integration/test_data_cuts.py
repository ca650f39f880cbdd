"""A data cut freezes the data as it stood: its content is every row of its studies at that
moment, with their ids, byte for byte the same however the live data changes afterwards, with the SHA-256 it
was stored with and the audit head at the cut. It can be retired (admins, audited) but never
changed or deleted, and only those who may read all of its studies see it."""

import hashlib
import uuid
from typing import Any

from litestar.testing import TestClient

from service.db.migrate import head_revision
from tests import factories as f
from tests.databases import issue_token

API = "/api/v1"


def _world(client: TestClient[Any]) -> dict[str, Any]:
    a, b = f.study(client, title="Cut study A"), f.study(client, title="Cut study B")
    patients = []
    for i in range(3):
        p = f.patient(client, a["id"], subject_code=f"CA-{i}")
        f.event(client, p["id"], event_type="death" if i == 0 else "last_follow_up", study_day=100 + i)
        patients.append(p)
    f.patient(client, b["id"], subject_code="CB-0")
    return {"A": a, "B": b, "patients": patients}


def _cut(client: TestClient[Any], **body: Any) -> Any:
    return client.post(f"{API}/data-cuts", json={"label": "ASH 2027 abstract", **body})


def _without_time(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "exported_at"}


def test_a_cut_keeps_the_data_as_it_stood(client: TestClient[Any]) -> None:
    world = _world(client)
    study_id = world["A"]["id"]
    created = _cut(client, study_ids=[study_id], note="first draft")
    assert created.status_code == 201, created.text
    cut = created.json()
    assert created.headers["location"] == f"/api/v1/data-cuts/{cut['id']}"
    assert cut["study_ids"] == [study_id] and cut["created_by"] == "test-admin"
    assert cut["studies_locked"] is False and cut["retired_at"] is None
    assert len(cut["audit_head"]) == 64 and cut["audit_records"] > 0
    frozen = client.get(f"{API}/data-cuts/{cut['id']}/content")
    assert frozen.status_code == 200
    assert hashlib.sha256(frozen.content).hexdigest() == cut["sha256"]
    assert len(frozen.content) == cut["size"]
    assert frozen.headers["etag"] == f'"{cut["sha256"]}"'
    document = frozen.json()
    assert (document["format"], document["label"]) == ("leukemia-registry/data-cut", "ASH 2027 abstract")
    assert (document["format_version"], document["schema_revision"]) == (2, head_revision())
    tables = document["tables"]
    assert [row[0] for row in tables["studies"]["rows"]] == [study_id]  # the other study is not in it
    patient_ids = [row[tables["patients"]["columns"].index("id")] for row in tables["patients"]["rows"]]
    assert patient_ids == sorted(p["id"] for p in world["patients"])
    assert len(tables["outcomes"]["rows"]) == 3
    live = client.get(f"{API}/studies/{study_id}/export").json()

    # The live data changes: a record corrected, one deleted, a patient added.
    event = client.get(f"{API}/outcomes", params={"patient_id": world["patients"][0]["id"]}).json()["items"][
        0
    ]
    path = f"{API}/outcomes/{event['id']}"
    etag = client.get(path).headers["etag"]
    headers = {"If-Match": etag, "X-Change-Reason": "corrected from source"}
    assert client.patch(path, json={"study_day": 50}, headers=headers).status_code == 200
    patient = f"{API}/patients/{world['patients'][2]['id']}"
    headers = {"If-Match": client.get(patient).headers["etag"], "X-Change-Reason": "withdrew consent"}
    assert client.delete(patient, params={"cascade": "true"}, headers=headers).status_code == 204
    f.patient(client, study_id, subject_code="CA-new")

    again = client.get(f"{API}/data-cuts/{cut['id']}/content")
    assert again.content == frozen.content
    assert client.get(f"{API}/data-cuts/{cut['id']}").json() == cut
    changed = client.get(f"{API}/studies/{study_id}/export").json()
    assert _without_time(changed) != _without_time(live)
    # The study's export on the cut is the export of that moment.
    on_cut = client.get(f"{API}/studies/{study_id}/export", params={"data_cut": cut["id"]})
    assert _without_time(on_cut.json()) == _without_time(live)
    assert on_cut.json()["exported_at"] == cut["created_at"].replace("Z", "+00:00")[:19] + "+00:00"
    # No route changes or deletes a cut.
    assert client.patch(f"{API}/data-cuts/{cut['id']}", json={"label": "x"}).status_code == 405
    assert client.delete(f"{API}/data-cuts/{cut['id']}").status_code == 405


def test_a_cut_covers_every_study_by_default_and_can_require_locks(client: TestClient[Any]) -> None:
    world = _world(client)
    everything = _cut(client)
    assert everything.status_code == 201
    assert set(everything.json()["study_ids"]) == {world["A"]["id"], world["B"]["id"]}
    refused = _cut(client, study_ids=[world["A"]["id"]], require_locked=True)
    assert refused.status_code == 409 and world["A"]["id"] in refused.json()["detail"]
    lock = client.post(f"{API}/studies/{world['A']['id']}/lock", json={"reason": "abstract"})
    assert lock.status_code == 200
    locked = _cut(client, study_ids=[world["A"]["id"]], require_locked=True)
    assert locked.status_code == 201 and locked.json()["studies_locked"] is True
    unknown = _cut(client, study_ids=[str(uuid.uuid4())])
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "study_ids"


def test_retiring_is_for_admins_audited_and_keeps_the_cut(client: TestClient[Any], database_url: str) -> None:
    world = _world(client)
    cut = _cut(client, study_ids=[world["A"]["id"]]).json()
    curator = issue_token(database_url, f"cur-{uuid.uuid4().hex[:6]}", "curator")
    as_curator = {"Authorization": f"Bearer {curator}"}
    retire = f"{API}/data-cuts/{cut['id']}/retire"
    assert client.post(retire, json={"reason": "superseded"}, headers=as_curator).status_code == 403
    retired = client.post(retire, json={"reason": "superseded by the final cut"})
    assert retired.status_code == 200
    assert retired.json()["retire_reason"] == "superseded by the final cut"
    assert retired.json()["sha256"] == cut["sha256"]
    assert client.post(retire, json={"reason": "again"}).status_code == 409
    assert (
        hashlib.sha256(client.get(f"{API}/data-cuts/{cut['id']}/content").content).hexdigest()
        == cut["sha256"]
    )
    records = client.get(
        f"{API}/audit", params={"resource_type": "data_cut", "resource_id": cut["id"]}
    ).json()
    assert [r["action"] for r in records["items"]] == ["create", "update"]
    assert records["items"][0]["changes"]["sha256"] == [None, cut["sha256"]]
    assert records["items"][1]["reason"] == "superseded by the final cut"
    # A global curator may take a cut, not only an admin.
    taken = client.post(
        f"{API}/data-cuts", json={"label": "B", "study_ids": [world["B"]["id"]]}, headers=as_curator
    )
    assert taken.status_code == 201 and taken.json()["created_by"].startswith("cur-")


def test_a_cut_is_seen_by_those_who_may_read_all_of_its_studies(
    client: TestClient[Any], database_url: str
) -> None:
    world = _world(client)
    of_a = _cut(client, study_ids=[world["A"]["id"]]).json()
    of_both = _cut(client).json()

    def token(*grants: dict[str, Any]) -> dict[str, str]:
        secret = issue_token(database_url, f"g-{uuid.uuid4().hex[:6]}", None, grants=list(grants))
        return {"Authorization": f"Bearer {secret}"}

    reader_a = token({"study_id": world["A"]["id"], "role": "reader"})
    listed = client.get(f"{API}/data-cuts", headers=reader_a).json()["items"]
    assert [c["id"] for c in listed] == [of_a["id"]]
    assert client.get(f"{API}/data-cuts/{of_both['id']}", headers=reader_a).status_code == 404
    assert client.get(f"{API}/data-cuts/{of_both['id']}/content", headers=reader_a).status_code == 404
    assert client.get(f"{API}/data-cuts/{of_a['id']}/content", headers=reader_a).status_code == 200
    aggregate_a = token({"study_id": world["A"]["id"], "role": "aggregate"})
    assert client.get(f"{API}/data-cuts", headers=aggregate_a).status_code == 403
    site = f.site(client, world["A"]["id"], code="S1")
    site_reader = token({"study_id": world["A"]["id"], "role": "reader", "sites": [site["id"]]})
    assert client.get(f"{API}/data-cuts", headers=site_reader).json()["items"] == []
    assert client.post(f"{API}/data-cuts", json={"label": "x"}, headers=reader_a).status_code == 403
