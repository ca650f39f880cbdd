"""Names that cannot impersonate: look-alike agents and subject codes are one name, invisible
and bidi-control characters are refused, through the API and the import alike."""

from typing import Any

import pytest
from litestar.testing import TestClient

from service.common.lookalikes import skeleton
from tests import factories as f
from tests.integration.test_bulk_import import document

API = "/api/v1"


def test_skeletons_fold_lookalikes_but_keep_ascii_codes_apart() -> None:
    assert skeleton("daratumumаb") == skeleton("daratumumab")  # Cyrillic а
    assert skeleton("Ｐ1") == skeleton("P1")  # full-width, folded by NFKC
    assert skeleton("P1") != skeleton("Pl") and skeleton("S0") != skeleton("SO")


def test_a_lookalike_subject_code_is_the_same_code(client: TestClient[Any]) -> None:
    study = f.study(client)
    f.patient(client, study["id"], subject_code="P1")
    twin = client.post(
        f"{API}/patients", json={"study_id": study["id"], "subject_code": "Ｐ1", "diagnosis": "AML"}
    )
    assert twin.status_code == 409 and "looks the same" in twin.json()["detail"]
    assert f.patient(client, study["id"], subject_code="Pl")["subject_code"] == "Pl"


@pytest.mark.parametrize("name", ["daratumumаb", "DARATUMUMAB"])
def test_a_lookalike_agent_is_the_same_agent(client: TestClient[Any], name: str) -> None:
    f.agent(client, name="daratumumab", targets=["CD38"])
    twin = client.post(f"{API}/agents", json={"name": name, "targets": ["CD38"]})
    assert twin.status_code == 409 and "daratumumab" in twin.json()["detail"]


@pytest.mark.parametrize(
    ("collection", "field", "value"),
    [
        ("agents", "name", "dara\u200btumumab"),
        ("patients", "subject_code", "P\u202e1"),
        ("patients", "subject_code", "P\u200d2"),
    ],
)
def test_invisible_and_bidi_characters_are_refused(
    client: TestClient[Any], collection: str, field: str, value: str
) -> None:
    study = f.study(client)
    body = (
        {"name": value, "targets": []}
        if collection == "agents"
        else {"study_id": study["id"], "subject_code": value, "diagnosis": "AML"}
    )
    response = client.post(f"{API}/{collection}", json=body)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


def test_an_import_refuses_lookalike_codes_and_agents(client: TestClient[Any]) -> None:
    body = document()
    body["patients"][2]["subject_code"] = "Ｐ0"
    body["agents"].append({"name": "vеnetoclax", "targets": []})  # Cyrillic е, beside venetoclax
    response = client.post(f"{API}/studies/import", json=body)
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert {"/patients/2/subject_code", "/agents/1/name"} <= pointers
