"""Analysis answers are cached on the version of their data: a repeat is served from the store
with the same ETag, `If-None-Match` gets 304 while nothing changed, and any committed write to
the study or the shared catalogues — of any kind — changes the version, the ETag and the answer,
which is then the same as a service without the store computes."""

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests import factories as f
from tests.conftest import RegistryTestClient
from tests.databases import issue_token

API = "/api/v1"


def _world(client: TestClient[Any]) -> dict[str, Any]:
    study = f.study(client, title="Cached study")
    arm = f.arm(client, study["id"])
    agent = f.agent(client, name=f"agent-{uuid.uuid4().hex[:6]}")
    patients = []
    for i in range(3):
        p = f.patient(client, study["id"], subject_code=f"C-{i}", arm_id=arm["id"])
        f.response(client, p["id"])
        f.adverse_event(client, p["id"], grade=2 + i % 2)
        f.event(client, p["id"], event_type="death" if i == 0 else "last_follow_up", study_day=90 + 30 * i)
        patients.append(p)
    return {"study": study, "arm": arm, "agent": agent, "patients": patients}


def _urls(study_id: str) -> list[str]:
    base = f"{API}/studies/{study_id}"
    return [
        f"{base}/survival?endpoint=OS",
        f"{base}/response-rates",
        f"{base}/adverse-event-incidence?severe_grade=3",
        f"{base}/survival/plot",
        f"{base}/reconciliation/",
        f"{API}/evidence/response-rates",
    ]


@pytest.fixture
def uncached(database_url: str) -> Iterator[TestClient[Any]]:
    """The same service over the same database, keeping no answers."""
    app = create_app(Settings(database_url=database_url, rate_limit_per_minute=0, analysis_cache_mb=0))
    with RegistryTestClient(app) as other:
        other.headers["Authorization"] = (
            f"Bearer {issue_token(database_url, f'nc-{uuid.uuid4().hex[:6]}', 'admin')}"
        )
        yield other


def _counter(client: TestClient[Any], source: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'^registry_analysis_answers_total\{{source="{source}"\}} ([0-9.e+]+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_repeat_is_served_from_the_store_with_the_same_validator(client: TestClient[Any]) -> None:
    world = _world(client)
    urls = _urls(world["study"]["id"])
    stored = _counter(client, "stored")
    for url in urls:
        first, second = client.get(url), client.get(url)
        assert first.status_code == second.status_code == 200, (url, first.text)
        assert first.headers["etag"].startswith('W/"s') or first.headers["etag"].startswith('W/"a')
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["data-version"] == first.headers["data-version"]
        assert second.headers["cache-control"] == "private, no-cache"
        assert second.headers["analysis-scope"] == "all"
        assert second.content == first.content
        assert second.headers["content-type"] == first.headers["content-type"]
    assert _counter(client, "stored") - stored == len(urls)


def test_the_same_query_in_another_order_is_the_same_answer(client: TestClient[Any]) -> None:
    study_id = _world(client)["study"]["id"]
    a = client.get(f"{API}/studies/{study_id}/survival", params=[("endpoint", "OS"), ("conf_level", "0.9")])
    b = client.get(f"{API}/studies/{study_id}/survival", params=[("conf_level", "0.9"), ("endpoint", "OS")])
    c = client.get(f"{API}/studies/{study_id}/survival", params=[("endpoint", "OS")])
    assert a.headers["etag"] == b.headers["etag"] != c.headers["etag"]


def test_if_none_match_is_304_until_a_write_changes_the_data(client: TestClient[Any]) -> None:
    world = _world(client)
    url = f"{API}/studies/{world['study']['id']}/survival?endpoint=OS"
    first = client.get(url)
    etag = first.headers["etag"]
    for header in (etag, etag.removeprefix("W/"), f'W/"other", {etag}', "*"):
        again = client.get(url, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": 'W/"other"'}).status_code == 200
    f.event(client, world["patients"][1]["id"], event_type="death", study_day=150)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["groups"][0]["events"] == first.json()["groups"][0]["events"] + 1


def _patch(client: TestClient[Any], path: str, body: dict[str, Any]) -> None:
    record = client.get(f"{API}/{path}")
    response = client.patch(f"{API}/{path}", json=body, headers={"If-Match": record.headers["etag"]})
    assert response.status_code == 200, response.text


def _delete(client: TestClient[Any], path: str) -> None:
    record = client.get(f"{API}/{path}")
    response = client.delete(f"{API}/{path}", headers={"If-Match": record.headers["etag"]})
    assert response.status_code == 204, response.text


def _outcome_of(client: TestClient[Any], patient_id: str, kind: str) -> str:
    items = client.get(f"{API}/outcomes", params={"patient_id": patient_id, "kind": kind}).json()["items"]
    return str(items[0]["id"])


def _adverse_event_of(client: TestClient[Any], patient_id: str) -> str:
    return str(
        client.get(f"{API}/adverse-events", params={"patient_id": patient_id}).json()["items"][0]["id"]
    )


WRITES: dict[str, Callable[[TestClient[Any], dict[str, Any]], Any]] = {
    "create a patient": lambda c, w: f.patient(c, w["study"]["id"], subject_code="C-new"),
    "create an outcome": lambda c, w: f.event(c, w["patients"][2]["id"], event_type="death", study_day=200),
    "update an outcome": lambda c, w: _patch(
        c, f"outcomes/{_outcome_of(c, w['patients'][0]['id'], 'event')}", {"study_day": 45}
    ),
    "delete an outcome": lambda c, w: _delete(
        c, f"outcomes/{_outcome_of(c, w['patients'][1]['id'], 'response')}"
    ),
    "update an adverse event": lambda c, w: _patch(
        c, f"adverse-events/{_adverse_event_of(c, w['patients'][0]['id'])}", {"grade": 4}
    ),
    "delete an adverse event": lambda c, w: _delete(
        c, f"adverse-events/{_adverse_event_of(c, w['patients'][1]['id'])}"
    ),
    "update a patient": lambda c, w: _patch(c, f"patients/{w['patients'][2]['id']}", {"arm_id": None}),
    "create an arm": lambda c, w: f.arm(c, w["study"]["id"], label="Arm B"),
    "update the study": lambda c, w: _patch(c, f"studies/{w['study']['id']}", {"title": "Renamed study"}),
    "create a reported result": lambda c, w: f.create(
        c,
        "reported-results",
        {
            "study_id": w["study"]["id"],
            "measure": "CR rate",
            "numerator": 2,
            "denominator": 3,
            "provenance": [{"source_document": "paper.txt", "location": "Table 2", "quote": "2/3 CR"}],
        },
    ),
    "update a shared agent": lambda c, w: _patch(
        c, f"agents/{w['agent']['id']}", {"description": "BCL-2 inhibitor"}
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_any_write_changes_every_answer_to_what_the_service_computes_afresh(
    client: TestClient[Any], uncached: TestClient[Any], write: str
) -> None:
    world = _world(client)
    urls = _urls(world["study"]["id"])
    before = {url: client.get(url) for url in urls}
    WRITES[write](client, world)
    for url in urls:
        after = client.get(url, headers={"If-None-Match": before[url].headers["etag"]})
        assert after.status_code == 200, (write, url)
        assert after.headers["data-version"] != before[url].headers["data-version"], (write, url)
        assert after.headers["etag"] != before[url].headers["etag"]
        fresh = uncached.get(url)
        if after.headers["content-type"].startswith("application/json"):
            assert after.json() == fresh.json(), (write, url)
        else:
            assert after.content == fresh.content, (write, url)


def test_answers_are_kept_apart_by_the_callers_scope(client: TestClient[Any], database_url: str) -> None:
    world = _world(client)
    url = f"{API}/studies/{world['study']['id']}/adverse-event-incidence"
    full = client.get(url)
    grants = [{"study_id": world["study"]["id"], "role": "aggregate"}]
    secret = issue_token(database_url, f"agg-{uuid.uuid4().hex[:6]}", None, grants=grants)
    aggregate = client.get(url, headers={"Authorization": f"Bearer {secret}"})
    assert aggregate.status_code == 200
    assert aggregate.headers["etag"] != full.headers["etag"]
    assert aggregate.json() != full.json()  # three patients: below the minimum count, withheld
    # The full answer's validator gives the aggregate grant no 304 and no full answer.
    again = client.get(
        url, headers={"Authorization": f"Bearer {secret}", "If-None-Match": full.headers["etag"]}
    )
    assert again.status_code == 200
    assert again.json() == aggregate.json()


def test_refusals_carry_no_validator_and_are_not_kept(client: TestClient[Any]) -> None:
    study_id = _world(client)["study"]["id"]
    url = f"{API}/studies/{study_id}/survival?endpoint=OS&conf_level=2"
    for _ in range(2):
        refused = client.get(url)
        assert refused.status_code == 400
        assert "etag" not in refused.headers
    missing = client.get(f"{API}/studies/{uuid.uuid4()}/survival")
    assert missing.status_code == 404 and "etag" not in missing.headers
