import json
import re
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from service.app import create_app
from service.openapi_export import openapi_document
from service.settings import Settings

CONTRACT = Path(__file__).parents[2] / "openapi" / "openapi.json"


def generated() -> dict[str, Any]:
    return json.loads(
        json.dumps(openapi_document(create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))))
    )


def test_committed_contract_matches_the_code() -> None:
    committed = json.loads(CONTRACT.read_text())
    assert committed == generated(), "openapi/openapi.json is stale: run `make openapi`"


def test_every_operation_has_an_id_and_problem_json_errors() -> None:
    document = generated()
    ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "patch", "delete"):
                continue
            ids.append(operation["operationId"])
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (path, method, status)
            if "{id}" in path:
                assert "404" in operation["responses"], (path, method)
    assert len(ids) == len(set(ids))
    for collection in (
        "Studies",
        "Arms",
        "Patients",
        "Agents",
        "Treatments",
        "AdverseEvents",
        "Outcomes",
        "ReportedResults",
        "PatientLinks",
    ):
        singular = collection[:-3] + "y" if collection.endswith("ies") else collection[:-1]
        assert {
            f"list{collection}",
            f"create{singular}",
            f"get{singular}",
            f"update{singular}",
            f"delete{singular}",
        } <= set(ids)


def test_request_bodies_refuse_unknown_fields() -> None:
    schemas = generated()["components"]["schemas"]
    assert schemas["PatientCreate"]["additionalProperties"] is False
    assert schemas["StudyCreate"]["properties"]["registry_ids"]["items"]["pattern"].startswith("^(NCT")
    assert schemas["StudyCreate"]["properties"]["target_enrollment"]["anyOf"][0]["minimum"] == 0
    assert set(schemas["Patient"]["required"]) >= {"id", "version", "arm_id", "age_years"}


def test_served_document_is_the_committed_one(client: TestClient[Any]) -> None:
    served = client.get("/docs/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(CONTRACT.read_text())


def test_docs_page_uses_only_local_assets(client: TestClient[Any]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    # (found, not compared as text: pytest's diff of a page this size takes minutes)
    assert re.findall(r"https?://[^\"' <]+", page.text) == []
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        response = client.get(f"/docs-assets/{asset}")
        assert response.status_code == 200 and len(response.content) > 1000


def test_health(client: TestClient[Any]) -> None:
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}


def test_numeric_query_parameters_state_both_bounds() -> None:
    # Litestar drops a zero lower bound of optional query parameters; service/openapi.py puts it
    # back. A parameter with a maximum but no minimum would let schemathesis send values the
    # service rightly refuses.
    for path, item in generated()["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if "maximum" in schema:
                    assert "minimum" in schema or "exclusiveMinimum" in schema, (path, parameter["name"])


def test_a_fields_page_of_mixed_outcome_kinds_is_valid_against_the_contract(client: TestClient[Any]) -> None:
    import jsonschema

    from tests import factories as f

    study = f.study(client)
    patient = f.patient(client, study["id"])
    f.response(client, patient["id"])
    f.event(client, patient["id"])
    body = client.get("/api/v1/outcomes", params={"fields": "kind"}).json()
    assert sorted(item["kind"] for item in body["items"]) == ["event", "response"]
    contract = json.loads(CONTRACT.read_text())
    root = {"$ref": "#/components/schemas/OutcomeFieldsPage", "components": contract["components"]}
    jsonschema.Draft202012Validator(root).validate(body)


def test_every_study_day_in_the_contract_excludes_day_zero() -> None:
    """SDTM has no day 0: the contract says so wherever a study day is, so that clients and
    generated tests do not send one (the service refuses it: test_treatments, test_adverse_events_and_outcomes)."""
    schemas = generated()["components"]["schemas"]
    days: dict[tuple[str, str], dict[str, Any]] = {}
    for name, schema in schemas.items():
        for field, spec in schema.get("properties", {}).items():
            for branch in [spec, *spec.get("anyOf", []), *spec.get("oneOf", [])]:
                if branch.get("type") == "integer" and "SDTM study day" in str(branch.get("description")):
                    days[(name, field)] = branch
    assert {
        ("AdverseEventCreate", "onset_day"),
        ("AdverseEventCreate", "resolution_day"),
        ("TreatmentCreate", "start_day"),
        ("TreatmentCreate", "end_day"),
        ("EventCreate", "study_day"),
        ("ResponseAssessmentCreate", "study_day"),
    } <= set(days)
    assert all(branch["not"] == {"const": 0} for branch in days.values()), [
        key for key, branch in days.items() if branch.get("not") != {"const": 0}
    ]
