"""Strict query parameters: every operation of the committed contract refuses a parameter it
does not declare, naming it (and the closest known name), and a repeated single-valued one."""

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f

CONTRACT = json.loads((Path(__file__).parents[2] / "openapi/openapi.json").read_text())
OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in CONTRACT["paths"].items()
    for method, operation in operations.items()
    if isinstance(operation, dict) and "operationId" in operation
]


def _url(path: str, operation: dict[str, Any]) -> str:
    kinds = {p["name"]: p.get("schema", {}) for p in operation.get("parameters", []) if p.get("in") == "path"}

    def value(match: re.Match[str]) -> str:
        schema = kinds.get(match.group(1), {})
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "1" if schema.get("type") == "integer" else "x"

    return re.sub(r"\{([^}]+)\}", value, path)


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[o[2]["operationId"] for o in OPERATIONS]
)
def test_every_operation_refuses_an_unknown_query_parameter(
    client: TestClient[Any], method: str, path: str, operation: dict[str, Any]
) -> None:
    response = client.request(method, _url(path, operation), params={"zz_not_a_parameter": "1"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "'zz_not_a_parameter'" in response.json()["detail"]


def test_a_typo_names_the_parameter_meant(client: TestClient[Any]) -> None:
    body = client.get("/api/v1/patients", params={"studyid": str(uuid.uuid4())}).json()
    assert body["status"] == 400 and "did you mean 'study_id'" in body["detail"]
    assert body["errors"][0]["field"] == "studyid" and body["errors"][0]["source"] == "query"


def test_a_repeated_single_valued_parameter_is_refused_and_a_list_parameter_is_not(
    client: TestClient[Any],
) -> None:
    study_id = f.study(client)["id"]
    twice = client.get("/api/v1/patients", params=[("limit", "1"), ("limit", "2")])
    assert twice.status_code == 400 and "'limit' is given 2 times" in twice.json()["detail"]
    survival = client.get(
        f"/api/v1/studies/{study_id}/survival", params=[("endpoint", "OS"), ("endpoint", "RFS")]
    )
    assert survival.status_code == 400
    cox = client.get(
        f"/api/v1/studies/{study_id}/cox", params=[("covariates", "age_years"), ("covariates", "sex")]
    )
    assert cox.status_code == 200


def test_a_control_character_in_a_name_is_escaped_and_cut_short(client: TestClient[Any]) -> None:
    name = "bad\x01" + "x" * 200
    detail = client.get("/api/v1/studies", params={name: "1"}).json()["detail"]
    assert "\\u0001" in detail and "x" * 100 not in detail
