"""A ClinicalTrials.gov record is stored as received, and a newer version of it updates its
study with history: the study's record fields follow the new version, arms and sites it adds are
added (those it drops are kept, with a warning), the reported results read from the previous
version are replaced (each deletion audited with its values), and both versions stay readable.
The same version again, or an older one, changes nothing."""

import copy
import hashlib
import json
from typing import Any

from litestar.testing import TestClient

from tests.integration.test_ctgov_results import IMPORT, _record, _resolve
from tests.integration.test_seed import get_all

API = "/api/v1"


def _post(client: TestClient[Any], record: dict[str, Any]) -> tuple[Any, bytes]:
    body = json.dumps(record, indent=1).encode()
    return client.post(IMPORT, content=body, headers={"Content-Type": "application/json"}), body


def _newer(record: dict[str, Any]) -> dict[str, Any]:
    """The next version: last updated later, enrolment corrected, a site added, one arm renamed,
    one posted figure corrected."""
    newer = copy.deepcopy(record)
    protocol = newer["protocolSection"]
    protocol["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2024-09-01"
    protocol["designModule"]["enrollmentInfo"]["count"] = 121
    protocol["contactsLocationsModule"]["locations"].append(
        {"facility": "Example Hospital Oslo", "city": "Oslo", "country": "Norway"}
    )
    remission = newer["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][1]
    remission["classes"][0]["categories"][0]["measurements"][0]["value"] = "31"
    return newer


def _state(client: TestClient[Any], study_id: str) -> dict[str, Any]:
    return {
        "study": client.get(f"{API}/studies/{study_id}").json(),
        "sites": get_all(client, "sites", study_id=study_id),
        "arms": get_all(client, "arms", study_id=study_id),
        "results": get_all(client, "reported-results", study_id=study_id),
        "records": client.get(f"{API}/studies/{study_id}/source-records").json(),
        "audit": client.get(f"{API}/audit", params={"study_id": study_id, "limit": 1}).json()["total"],
    }


def test_the_record_is_stored_as_received_and_provenance_resolves_in_it(
    empty_target: TestClient[Any],
) -> None:
    response, body = _post(empty_target, _record())
    assert response.status_code == 201, response.text
    study_id = response.json()["study_id"]
    records = empty_target.get(f"{API}/studies/{study_id}/source-records").json()["items"]
    assert [(r["source"], r["version"], r["sha256"], r["size"]) for r in records] == [
        ("ClinicalTrials.gov NCT09990002", "2024-03-15", hashlib.sha256(body).hexdigest(), len(body))
    ]
    stored = empty_target.get(f"{API}/studies/{study_id}/source-records/{records[0]['id']}")
    assert stored.status_code == 200
    assert stored.content == body
    assert stored.headers["etag"] == f'"{records[0]["sha256"]}"'
    record = stored.json()
    results = get_all(empty_target, "reported-results", study_id=study_id)
    assert results
    for result in results:
        (provenance,) = result["provenance"]
        assert provenance["location"].startswith("/resultsSection/")
        assert _resolve(record, provenance["location"]) is not None
    # The re-export writes the results section back as posted.
    exported = empty_target.get(f"{API}/studies/{study_id}/export/ctgov").json()
    assert exported["resultsSection"] == record["resultsSection"]


def test_a_newer_version_updates_the_study_with_history(empty_target: TestClient[Any]) -> None:
    first, _ = _post(empty_target, _record())
    study_id = first.json()["study_id"]
    before = _state(empty_target, study_id)

    response, body = _post(empty_target, _newer(_record()))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["study_id"] == study_id
    update = answer["update"]
    assert (update["previous_version"], update["version"]) == ("2024-03-15", "2024-09-01")
    assert update["sha256"] == hashlib.sha256(body).hexdigest()
    assert update["previous_sha256"] == before["records"]["items"][0]["sha256"]
    assert update["fields_changed"] == ["actual_enrollment"]
    assert update["reported_results_removed"] == len(before["results"])
    assert answer["counts"]["sites"] == 1 and answer["counts"]["arms"] == 0
    assert answer["counts"]["reported_results"] == len(before["results"])

    after = _state(empty_target, study_id)
    assert after["study"]["actual_enrollment"] == 121
    assert after["study"]["version"] == before["study"]["version"] + 1
    assert [s["institution"] for s in after["sites"]][-1] == "Example Hospital Oslo"
    assert after["sites"][-1]["code"] == "S4"  # numbered by its place in the record, as on import
    assert {a["id"] for a in after["arms"]} == {a["id"] for a in before["arms"]}

    def complete_remissions(results: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
        return [
            (r["value"], r["denominator"])
            for r in results
            if r["measure"].endswith("(CR + CRi) — CR") and r["value"] > 20
        ]

    assert complete_remissions(before["results"]) == [(30.0, 80)]
    assert complete_remissions(after["results"]) == [(31.0, 80)]
    assert all(r["arm_id"] is not None for r in after["results"] if r["measure"].endswith("— CR"))
    assert {r["id"] for r in after["results"]}.isdisjoint({r["id"] for r in before["results"]})
    assert [r["version"] for r in after["records"]["items"]] == ["2024-03-15", "2024-09-01"]

    # History: the study's update names both versions; each replaced result's deletion keeps its values.
    audit = empty_target.get(
        f"{API}/audit", params={"study_id": study_id, "action": "update", "resource_type": "study"}
    ).json()["items"]
    (record_update,) = audit
    assert record_update["changes"]["record_version"] == ["2024-03-15", "2024-09-01"]
    assert record_update["changes"]["actual_enrollment"] == [120, 121]
    deletions = empty_target.get(
        f"{API}/audit",
        params={"study_id": study_id, "action": "delete", "resource_type": "reported_result", "limit": 500},
    ).json()["items"]
    assert {d["resource_id"] for d in deletions} == {r["id"] for r in before["results"]}
    assert all(d["changes"]["measure"][0] for d in deletions)

    # The earlier version stays readable, byte for byte; the re-export carries the newer results.
    first_record = after["records"]["items"][0]
    assert (
        empty_target.get(f"{API}/studies/{study_id}/source-records/{first_record['id']}").json() == _record()
    )
    exported = empty_target.get(f"{API}/studies/{study_id}/export/ctgov").json()
    assert exported["resultsSection"] == _newer(_record())["resultsSection"]


def test_the_same_or_an_older_version_changes_nothing(empty_target: TestClient[Any]) -> None:
    newer = _newer(_record())
    first, _ = _post(empty_target, newer)
    study_id = first.json()["study_id"]
    before = _state(empty_target, study_id)

    again, _ = _post(empty_target, newer)
    assert again.status_code == 409
    assert again.json()["type"].endswith("record-already-imported")

    older, _ = _post(empty_target, _record())  # last updated 2024-03-15, before 2024-09-01
    assert older.status_code == 409
    assert older.json()["type"].endswith("older-record")
    assert "2024-03-15" in older.json()["detail"]

    undated = _newer(_record())
    del undated["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]
    undated["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = 99
    refused, _ = _post(empty_target, undated)
    assert refused.status_code == 409
    assert "last update" in refused.json()["detail"]

    assert _state(empty_target, study_id) == before


def test_an_arm_or_site_the_record_drops_is_kept_with_a_warning(empty_target: TestClient[Any]) -> None:
    first, _ = _post(empty_target, _record())
    study_id = first.json()["study_id"]
    newer = _newer(_record())
    del newer["protocolSection"]["contactsLocationsModule"]["locations"][0]
    response, _ = _post(empty_target, newer)
    assert response.status_code == 200, response.text
    assert (
        "site S1 (University Hospital Example) is no longer in the record: kept"
        in response.json()["warnings"]
    )
    assert [s["code"] for s in get_all(empty_target, "sites", study_id=study_id)] == ["S1", "S2", "S3"]


def test_a_plain_study_document_is_still_refused_when_its_source_is_stored(
    empty_target: TestClient[Any],
) -> None:
    first, _ = _post(empty_target, _record())
    study_id = first.json()["study_id"]
    document = empty_target.get(f"{API}/studies/{study_id}/export").json()
    again = empty_target.post(f"{API}/studies/import", json=document)
    assert again.status_code == 409
    assert again.json()["type"].endswith("already-imported")


def test_source_records_go_with_their_study(empty_target: TestClient[Any]) -> None:
    first, _ = _post(empty_target, _record())
    study_id = first.json()["study_id"]
    record_id = empty_target.get(f"{API}/studies/{study_id}/source-records").json()["items"][0]["id"]
    deleted = empty_target.delete(f"{API}/studies/{study_id}", params={"cascade": "true"})
    assert deleted.status_code == 204, deleted.text
    assert empty_target.get(f"{API}/studies/{study_id}/source-records").status_code == 404
    assert empty_target.get(f"{API}/studies/{study_id}/source-records/{record_id}").status_code == 404
    # Deleted with its study, the record can be imported afresh.
    again, _ = _post(empty_target, _record())
    assert again.status_code == 201, again.text
