"""Imports that cannot take the service down, on both databases: one study per source document
(a race gives one 201 and 409s), typed records (a mistyped value is a 422 with its pointer,
never a 500), repeated keys refused naming both records, malformed documents generated from
the import schema stored never, and a generator for large documents (tests and the bench)."""

import copy
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import RegistryTestClient
from tests.databases import fresh_database, issue_token

API = "/api/v1"


def document(patients: int = 3, records: int = 2, source: str | None = None) -> dict[str, Any]:
    """A valid study document: `patients` patients with `records` outcomes and adverse events
    each and a treatment, two arms (the benchmark uses it at 20,000 patients)."""
    return {
        "format": "leukemia-registry/study",
        "format_version": 1,
        "document": source or f"generated-{uuid.uuid4().hex}.txt",
        "agents": [{"name": "venetoclax", "targets": ["BCL-2"]}],
        "study": {"title": "Generated study", "design": "case_series"},
        "arms": [{"key": "arm-1", "label": "A", "agents": ["venetoclax"]}, {"key": "arm-2", "label": "B"}],
        "sites": [
            {"code": "A1", "institution": "Centre A", "city": "Lyon", "country": "France"},
            {"code": "B1", "institution": "Centre B", "country": "Spain"},
        ],
        "patients": [
            {
                "subject_code": f"P{i}",
                "arm": "arm-1" if i % 2 else "arm-2",
                "site": "A1" if i % 3 else "b1",  # codes are matched without case
                "diagnosis": "AML",
                "age_years": 20 + i % 60,
                "treatments": [
                    {
                        "key": "t1",
                        "phase": "induction",
                        "start_day": 1,
                        "end_day": 28,
                        "components": [{"agent": "venetoclax", "dose": 400, "dose_unit": "mg"}],
                    }
                ],
                "adverse_events": [
                    {"term": "Anemia", "grade": 1 + j % 4, "treatment": "t1", "onset_day": 2 + j}
                    for j in range(records)
                ],
                "outcomes": [
                    {"kind": "response", "study_day": 28 + j, "category": "CR", "treatment": "t1"}
                    for j in range(records - 1)
                ]
                + [{"kind": "event", "event_type": "last_follow_up", "study_day": 100 + i % 50}],
            }
            for i in range(patients)
        ],
    }


def _client(url: str) -> RegistryTestClient:
    client = RegistryTestClient(create_app(Settings(database_url=url, rate_limit_per_minute=0)))
    client.headers["Authorization"] = f"Bearer {issue_token(url, f'import-{uuid.uuid4().hex[:6]}', 'admin')}"
    return client


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[TestClient[Any]]:
    with fresh_database(backend, tmp_path) as url, _client(url) as client:
        yield client


def _count(client: TestClient[Any], collection: str) -> int:
    total: int = client.get(f"{API}/{collection}", params={"limit": 1}).json()["total"]
    return total


def test_a_generated_document_imports_with_every_record(target: TestClient[Any]) -> None:
    response = target.post(f"{API}/studies/import", json=document(patients=40, records=3))
    assert response.status_code == 201, response.text
    assert response.json()["counts"] == {
        "arms": 2,
        "sites": 2,
        "patients": 40,
        "treatments": 40,
        "adverse_events": 120,
        "outcomes": 120,
        "reported_results": 0,
    }
    assert _count(target, "outcomes") == 120 and _count(target, "adverse-events") == 120
    # the rows carry what the API's own creates would: the patient's last recorded day, the
    # canonical term with its MedDRA code, the treatment's components
    study_id = response.json()["study_id"]
    rows = target.get(f"{API}/studies/{study_id}/time-to-event").json()["rows"]
    assert [r["end_day"] for r in rows[:3]] == [100, 101, 102]  # censored at each last record
    [event] = target.get(f"{API}/adverse-events", params={"limit": 1}).json()["items"]
    assert event["term"] == "Anemia" and event["meddra_code"]
    [treatment] = target.get(f"{API}/treatments", params={"limit": 1}).json()["items"]
    assert [c["dose"] for c in treatment["components"]] == [400]
    sites = {
        s["code"]: s["id"] for s in target.get(f"{API}/sites", params={"study_id": study_id}).json()["items"]
    }
    assert sorted(sites) == ["A1", "B1"]
    at_b1 = target.get(f"{API}/patients", params={"site_id": sites["B1"], "limit": 1}).json()["total"]
    assert at_b1 == len([i for i in range(40) if i % 3 == 0])
    # the export names each patient's site by its code, and carries the sites
    exported = target.get(f"{API}/studies/{study_id}/export").json()
    assert [s["code"] for s in exported["sites"]] == ["A1", "B1"]
    assert [p.get("site") for p in exported["patients"][:3]] == ["B1", "A1", "A1"]


def test_concurrent_imports_of_one_document_store_one_study(target: TestClient[Any]) -> None:
    body = document(patients=30, source="race.txt")
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(
            pool.map(lambda _: target.post(f"{API}/studies/import", json=body).status_code, range(4))
        )
    assert statuses == [201, 409, 409, 409]
    assert _count(target, "studies") == 1 and _count(target, "patients") == 30


def test_an_agent_added_meanwhile_is_a_conflict_to_retry_not_an_import_already_stored(
    target: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports that add the same new agent: the one that writes second finds the agent taken
    (planned before the first committed). Its source document is new: the answer says to retry,
    not that the document is already stored (it used to), and nothing of it is stored."""
    from service.exchange import importing

    assert target.post(f"{API}/studies/import", json=document(source="first.txt")).status_code == 201

    async def planned_before_the_first_committed(_session: Any) -> dict[str, Any]:
        return {}

    monkeypatch.setattr(importing, "agent_ids_by_name", planned_before_the_first_committed)
    second = target.post(f"{API}/studies/import", json=document(source="second.txt"))
    assert second.status_code == 409, second.text
    assert second.headers["content-type"].startswith("application/problem+json")
    assert "agent of the same name" in second.json()["detail"] and "retry" in second.json()["detail"]
    assert "already" not in second.text and "second.txt" not in second.text
    assert _count(target, "studies") == 1
    monkeypatch.undo()
    assert target.post(f"{API}/studies/import", json=document(source="second.txt")).status_code == 201
    assert _count(target, "studies") == 2 and len(get_all_agents(target)) == 1


def get_all_agents(client: TestClient[Any]) -> list[Any]:
    return client.get(f"{API}/agents").json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("where", "value", "pointer"),
    [
        (("patients", 0, "treatments"), "x", "/patients/0/treatments"),
        (("patients", 0, "treatments"), [[1]], "/patients/0/treatments/0"),
        (("patients", 0, "adverse_events"), [1], "/patients/0/adverse_events/0"),
        (("patients", 0, "outcomes"), None, "/patients/0/outcomes"),
        (
            ("patients", 0, "treatments", 0, "components"),
            ["venetoclax"],
            "/patients/0/treatments/0/components/0",
        ),
        (("arms", 0, "key"), ["arm-1"], "/arms/0/key"),
        (("arms", 0, "key"), {"k": 1}, "/arms/0/key"),
        (("patients", 0, "arm"), [1], "/patients/0/arm"),
        (("arms",), [[1]], "/arms/0"),
        (("patients", 1), "P1", "/patients/1"),
    ],
)
def test_a_mistyped_record_is_a_422_with_its_pointer_and_stores_nothing(
    target: TestClient[Any], where: tuple[Any, ...], value: Any, pointer: str
) -> None:
    body = document()
    node: Any = body
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    response = target.post(f"{API}/studies/import", json=body)
    assert response.status_code == 422, response.text
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    assert _count(target, "studies") == 0 and _count(target, "agents") == 0


def test_repeated_keys_are_refused_naming_both_records(target: TestClient[Any]) -> None:
    body = document()
    body["arms"].append({"key": "arm-1", "label": "C"})
    body["patients"][0]["treatments"].append(copy.deepcopy(body["patients"][0]["treatments"][0]))
    body["patients"][2]["subject_code"] = "P0"
    body["sites"].append({"code": "a1", "institution": "Same code, other case"})
    body["patients"][1]["site"] = "Z9"
    problems = {
        e["pointer"]: e["message"] for e in target.post(f"{API}/studies/import", json=body).json()["errors"]
    }
    assert "/arms/0/key" in problems["/arms/2/key"]
    assert "/patients/0/treatments/0/key" in problems["/patients/0/treatments/1/key"]
    assert "/patients/0" in problems["/patients/2/subject_code"]
    assert "/sites/0/code" in problems["/sites/2/code"]
    assert "no site with key 'z9'" in problems["/patients/1/site"]
    assert _count(target, "studies") == 0


def test_a_registry_record_may_add_only_so_many_agents(target: TestClient[Any]) -> None:
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT09999999", "briefTitle": "Many drugs"},
            "conditionsModule": {"conditions": ["Acute Myeloid Leukemia"]},
            "armsInterventionsModule": {
                "interventions": [{"type": "DRUG", "name": f"drug {i}"} for i in range(5000)]
            },
        }
    }
    response = target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
    assert response.status_code == 422 and "at most 50 agents" in response.json()["detail"]
    assert _count(target, "agents") == 0


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def malformed(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with one to three values replaced by arbitrary JSON."""
    body = document(patients=2, records=2, source="malformed.txt")
    for _ in range(draw(st.integers(1, 3))):
        node: Any = body
        path: list[Any] = []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            step = draw(
                st.sampled_from(sorted(node)) if isinstance(node, dict) else st.integers(0, len(node) - 1)
            )
            path.append(step)
            node = node[step]
        if not path:
            continue
        parent: Any = body
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(JSON)
    return body


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)
@given(body=malformed())
def test_malformed_documents_never_500_and_store_nothing_unless_valid(
    target: TestClient[Any], body: dict[str, Any]
) -> None:
    before = _count(target, "studies")
    response = target.post(
        f"{API}/studies/import", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (201, 400, 409, 422), response.text
    assert response.headers["content-type"].startswith(
        "application/json" if response.status_code == 201 else "application/problem+json"
    )
    after = _count(target, "studies")
    assert after == before + (1 if response.status_code == 201 else 0)
    if response.status_code == 201:  # the generated change happened to be valid: undo for the next
        assert (
            target.delete(
                f"{API}/studies/{response.json()['study_id']}",
                params={"cascade": "true"},
                headers={"If-Match": "*"},
            ).status_code
            == 204
        )


def test_a_large_document_is_checked_in_a_worker_process_first(
    target: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every body goes through the worker process's check here (the threshold set to 0): its
    verdicts are the same as the in-process ones — refused records with pointers, a malformed
    envelope, a rule of the registry import — and an accepted document is stored once."""
    from service.exchange import importing

    monkeypatch.setattr(importing, "CHECK_IN_PROCESS_BYTES", 0)
    bad = document()
    bad["patients"][1]["age_years"] = -1
    refused = target.post(f"{API}/studies/import", json=bad)
    assert refused.status_code == 422 and "/patients/1/age_years" in [
        e["pointer"] for e in refused.json()["errors"]
    ]
    envelope = target.post(
        f"{API}/studies/import", json={"format": "other", "format_version": 1, "study": {}}
    )
    assert envelope.status_code == 400
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT09999998", "briefTitle": "Many drugs"},
            "conditionsModule": {"conditions": ["Acute Myeloid Leukemia"]},
            "armsInterventionsModule": {
                "interventions": [{"type": "DRUG", "name": f"d{i}"} for i in range(60)]
            },
        }
    }
    rule = target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
    assert rule.status_code == 422 and "at most 50 agents" in rule.json()["detail"]
    accepted = target.post(f"{API}/studies/import", json=document(patients=4))
    assert accepted.status_code == 201 and _count(target, "studies") == 1
