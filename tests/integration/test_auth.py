"""Authentication and roles over every route of the contract: no token, malformed, unknown,
expired, revoked, reader, curator and admin, each with the status it must get."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.databases import issue_token

CONTRACT = json.loads((Path(__file__).parents[2] / "openapi" / "openapi.json").read_text())
SOME_ID = "0190a5b0-0000-7000-8000-000000000000"
OPERATIONS = [
    (method.upper(), path, op["operationId"])
    for path, item in CONTRACT["paths"].items()
    for method, op in item.items()
    if method in ("get", "post", "patch", "delete") and path.startswith("/api/")
]
# Who may call each operation, at the guard: "reader" (study-level records and analyses: every
# role and grant), "rows" (patient-level rows: not an aggregate grant), "curator" (writes within
# a curator grant's scope), "global curator" (new studies, the shared catalogue, imports),
# "admin". An operation missing here fails the matrix: a new endpoint cannot ship unguarded.
ACCESS: dict[str, str] = {
    **{f"list{p}": "reader" for p in ("Studies", "Arms", "Sites", "ReportedResults", "Agents")},
    **{f"get{s}": "reader" for s in ("Study", "Arm", "Site", "ReportedResult", "Agent")},
    **{f"list{p}": "rows" for p in ("Patients", "Treatments", "AdverseEvents", "Outcomes", "PatientLinks")},
    **{f"get{s}": "rows" for s in ("Patient", "Treatment", "AdverseEvent", "Outcome", "PatientLink")},
    **{
        f"{verb}{s}": "curator"
        for verb in ("create", "update", "delete")
        for s in (
            "Arm",
            "Site",
            "ReportedResult",
            "Patient",
            "Treatment",
            "AdverseEvent",
            "Outcome",
            "PatientLink",
        )
    },
    **{f"{verb}Study": "curator" for verb in ("update", "delete")},
    **{
        f"get{s}History": "curator"
        for s in (
            "Study",
            "Arm",
            "Site",
            "ReportedResult",
            "Agent",
            "Patient",
            "Treatment",
            "AdverseEvent",
            "Outcome",
            "PatientLink",
        )
    },
    **{f"{verb}Agent": "global curator" for verb in ("create", "update", "delete")},
    "createStudy": "global curator",
    "importStudy": "global curator",
    "importClinicalTrialsGovStudy": "global curator",
    "createDataCut": "global curator",
    **{op: "rows" for op in ("listDataCuts", "getDataCut", "getDataCutContent", "getDataCutPackage")},
    **{
        op: "reader"
        for op in (
            "getAdverseEventIncidence",
            "getCoxModel",
            "getTransplantCumulativeIncidence",
            "getCompetingRisksModel",
            "getTransplantAnalysis",
            "getResponseModel",
            "getCumulativeIncidence",
            "getReconciliation",
            "getResponseRates",
            "getSurvival",
            "getSimonTwoStageDesign",
            "getEvidenceAdverseEventIncidence",
            "getEvidenceResponseRates",
            "getEvidenceHazardRatios",
            "getFhirCapabilityStatement",
            "getVersion",
        )
    },
    **{
        op: "figure"
        for plot in ("getSurvivalPlot", "getCumulativeIncidencePlot", "getEvidenceResponseRatesForestPlot")
        for op in (plot, f"{plot}Png")
    },
    **{
        op: "rows"
        for op in (
            "getTimeToEvent",
            "getSwimmerPlot",
            "getSwimmerPlotPng",
            "exportStudy",
            "exportStudyFhir",
            "exportStudyFhirNdjson",
            "exportStudyCsv",
            "exportStudyClinicalTrialsGov",
            "listStudySourceRecords",
            "getStudySourceRecord",
            "listPossibleDuplicatePatients",
            "listStudyDatasets",
            "getStudyDataset",
            "getStudyDatasetNdjson",
        )
    },
    **{
        op: "admin"
        for op in (
            "createToken",
            "listTokens",
            "revokeToken",
            "listAuditRecords",
            "streamAuditRecords",
            "lockStudy",
            "unlockStudy",
            "retireDataCut",
        )
    },
}
# Which identities each level admits.
ADMITS = {
    "reader": {"reader", "curator", "admin", "A-curator", "A-reader", "A-aggregate", "A1-reader"},
    "rows": {"reader", "curator", "admin", "A-curator", "A-reader", "A1-reader"},
    # an aggregate grant too when AGGREGATE_MIN_COUNT is 0 (tests/integration/test_grants.py)
    "figure": {"reader", "curator", "admin", "A-curator", "A-reader", "A1-reader"},
    "curator": {"curator", "admin", "A-curator"},
    "global curator": {"curator", "admin"},
    "admin": {"admin"},
}


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", SOME_ID, path)


@pytest.fixture(scope="module")
def identities(session_client: TestClient[Any], database_url: str) -> dict[str, str | None]:
    past = datetime.now(UTC) - timedelta(days=1)
    return {
        "none": None,
        "malformed": "Token abc",
        "unknown": "Bearer lor_not-a-token",
        "expired": "Bearer " + issue_token(database_url, "expired-reader", "reader", expires_at=past),
        "revoked": "Bearer " + issue_token(database_url, "revoked-admin", "admin", revoked=True),
        "reader": "Bearer " + issue_token(database_url, "matrix-reader", "reader"),
        "curator": "Bearer " + issue_token(database_url, "matrix-curator", "curator"),
        "admin": "Bearer " + issue_token(database_url, "matrix-admin", "admin"),
        **{
            name: "Bearer "
            + issue_token(
                database_url, f"matrix-{name}", None, grants=[{"study_id": SOME_ID, "role": role, **extra}]
            )
            for name, role, extra in (
                ("A-curator", "curator", {}),
                ("A-reader", "reader", {}),
                ("A-aggregate", "aggregate", {}),
                ("A1-reader", "reader", {"sites": [SOME_ID]}),
            )
        },
    }


def test_every_operation_against_every_identity(
    client: TestClient[Any], identities: dict[str, str | None]
) -> None:
    assert {op for _, _, op in OPERATIONS} == set(ACCESS), "every operation needs its entry in ACCESS"
    tried = 0
    for method, path, operation_id in OPERATIONS:
        needed = ACCESS[operation_id]
        for identity, header in identities.items():
            headers = {"Authorization": header} if header else {}
            # The session client carries an admin token: replace it (or drop it) for this call.
            response = client.request(
                method,
                _url(path),
                headers=headers or {"Authorization": ""},
                json={} if method in ("POST", "PATCH") else None,
            )
            tried += 1
            if identity in ("none", "malformed", "unknown", "expired", "revoked"):
                assert response.status_code == 401, (method, path, identity, response.status_code)
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert response.headers["content-type"].startswith("application/problem+json")
            elif identity not in ADMITS[needed]:
                assert response.status_code == 403, (method, path, identity, response.status_code)
            else:
                assert response.status_code not in (401, 403), (method, path, identity, response.status_code)
    assert tried == len(OPERATIONS) * len(identities) and len(OPERATIONS) > 50


def test_each_operation_documents_who_may_call_it() -> None:
    """The contract's description of each operation ends with the rule its guard enforces (the
    matrix above tests the same rule at run time)."""
    from service.auth.middleware import WHY

    for path, item in CONTRACT["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "patch", "delete"):
                continue
            rule = (
                f"Who may call it: {WHY[ACCESS[operation['operationId']]]}."
                if path.startswith("/api/")
                else "No token needed."
            )
            assert operation["description"].endswith(rule), (method, path)


def test_health_and_docs_need_no_token(client: TestClient[Any]) -> None:
    for path in ("/health", "/docs", "/docs/openapi.json", "/docs-assets/swagger-ui.css"):
        assert client.get(path, headers={"Authorization": ""}).status_code == 200, path


def test_token_lifecycle_through_the_api(client: TestClient[Any]) -> None:
    created = client.post("/api/v1/tokens", json={"name": "bob", "role": "reader"})
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("lor_") and created.headers["location"].endswith(created.json()["id"])
    listed = client.get("/api/v1/tokens", params={"limit": 500}).json()["items"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert client.get("/api/v1/studies", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert (
        client.post(
            "/api/v1/studies",
            headers={"Authorization": f"Bearer {secret}"},
            json={"title": "x", "design": "other"},
        ).status_code
        == 403
    )
    assert client.post("/api/v1/tokens", json={"name": "bob", "role": "admin"}).status_code == 409
    assert client.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 204
    refused = client.get("/api/v1/studies", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_only_the_hash_is_stored(client: TestClient[Any], database_url: str) -> None:
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    secret = client.post("/api/v1/tokens", json={"name": "carol", "role": "curator"}).json()["token"]

    async def stored() -> list[Any]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text("SELECT name, token_hash FROM api_tokens"))).all())
        finally:
            await engine.dispose()

    rows = asyncio.run(stored())
    assert all(secret not in str(row) for row in rows)
