"""The de-identification guard and the request limits."""

from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"


@pytest.mark.parametrize(
    "text",
    [
        "write to jane.doe@example.org",
        "phone +41 21 314 11 11",
        "MRN: A1234567",
        "DOB 12/03/1961",
        "(555) 123-4567",
    ],
)
def test_identifiers_in_free_text_are_refused(client: TestClient[Any], text: str) -> None:
    study = f.study(client)
    response = client.post(
        f"{API}/patients",
        json={"study_id": study["id"], "subject_code": "P1", "diagnosis": "AML", "notes": text},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "notes"
    assert client.get(f"{API}/patients").json()["total"] == 0


def test_nested_free_text_names_its_path(client: TestClient[Any]) -> None:
    response = client.post(
        f"{API}/studies",
        json={
            "title": "T",
            "design": "other",
            "provenance": [{"source_document": "x", "location": "y", "quote": "mail a@b.org"}],
        },
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "provenance[0].quote"


def test_clinical_numbers_are_not_mistaken_for_identifiers(client: TestClient[Any]) -> None:
    study = f.study(client, summary="CD34+ dose 13.35x10^6/kg; MRD 7 x 10-4 on 2024-04-15; KMT2A-AFF1 0.012%")
    assert study["summary"].startswith("CD34+")


def test_ages_of_90_and_above_are_stored_as_90_with_a_flag(client: TestClient[Any]) -> None:
    study = f.study(client)
    old = f.patient(client, study["id"], age_years=93)
    assert (old["age_years"], old["age_capped"]) == (90, True)
    changed = client.patch(f"{API}/patients/{old['id']}", json={"age_years": 52}).json()
    assert (changed["age_years"], changed["age_capped"]) == (52, False)
    assert f.patient(client, study["id"], subject_code="P2", age_years=89.5)["age_capped"] is False


def test_oversized_bodies_are_413(client: TestClient[Any]) -> None:
    body = b'{"title": "' + b"x" * 1_100_000 + b'", "design": "other"}'
    response = client.post(f"{API}/studies", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "field, value",
    [
        ("id", "0190a5b0-0000-7000-8000-000000000000"),
        ("version", 7),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("age_capped", True),
    ],
)
def test_server_owned_fields_cannot_be_written(client: TestClient[Any], field: str, value: Any) -> None:
    study = f.study(client)
    created = client.post(
        f"{API}/patients",
        json={"study_id": study["id"], "subject_code": "P", "diagnosis": "AML", field: value},
    )
    assert created.status_code == 400 and client.get(f"{API}/patients").json()["total"] == 0
    patient = f.patient(client, study["id"])
    changed = client.patch(f"{API}/patients/{patient['id']}", json={field: value})
    assert changed.status_code == 400
    assert client.get(f"{API}/patients/{patient['id']}").json()["version"] == 1


# Gaps found by the reliability audit: SSN, full-width @, spaced or dotted M R N.
@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("SSN 123-45-6789", "social security number"),
        ("contact 987-65-4321 for records", "social security number"),
        ("reply to ward＠hospital.example", "e-mail"),
        ("M R N 1234567", "medical record number"),
        ("m.r.n.: A-88231", "medical record number"),
    ],
)
def test_de_identification_gaps_are_closed(client: TestClient[Any], text: str, what: str) -> None:
    study = f.study(client)
    response = client.post(
        f"{API}/patients",
        json={"study_id": study["id"], "subject_code": "P", "diagnosis": "AML", "notes": text},
    )
    assert response.status_code == 422 and what in response.json()["detail"]


@pytest.mark.parametrize(
    "text",
    [
        "CD34+ cell dose 13.35x106/kg on day 78",
        "karyotype 46,XY,t(4;11)(q21;q23) in 20 metaphases",
        "IgH MRD 7 x 10-4; KMT2A-AFF1 0.15% (2024-04-15)",
        "cytarabine 1000 mg/m2/d for 5 days, platelets 44 G/l",
        "blinatumomab 9ug d1-7, 28ug d8-14; mRNA 123456 copies",
    ],
)
def test_clinical_notation_is_not_mistaken_for_an_identifier(client: TestClient[Any], text: str) -> None:
    study = f.study(client)
    f.patient(client, study["id"], notes=text)
