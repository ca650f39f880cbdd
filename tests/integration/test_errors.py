"""Bad input of every kind gets a problem+json answer, never a 500, and changes nothing."""

from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"
BAD_BODIES = [
    pytest.param(b'{"title": "a\\u0000b", "design": "other"}', id="nul-byte"),
    pytest.param(
        b'{"title": "T", "design": "other", "target_enrollment": 99999999999999999999999}', id="huge-int"
    ),
    pytest.param(b'{"title": "T", "design": "other", "target_enrollment": 1e400}', id="huge-float"),
    pytest.param(b'{"title": "T", "design": "other", "unknown": 1}', id="unknown-field"),
    pytest.param(b'{"title": 5, "design": "other"}', id="wrong-type"),
    pytest.param(b'{"title": "T", "design": "nonsense"}', id="bad-enum"),
    pytest.param(b'{"title": "T"', id="malformed-json"),
    pytest.param(b"[]", id="not-an-object"),
    pytest.param(b'{"title": "' + b"x" * 600 + b'", "design": "other"}', id="too-long"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_bodies_are_400_problem_json(client: TestClient[Any], body: bytes) -> None:
    response = client.post(f"{API}/studies", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400 and problem["title"] and problem["type"].startswith("/problems/")
    assert client.get(f"{API}/studies").json()["total"] == 0


def test_validation_error_names_the_field(client: TestClient[Any]) -> None:
    response = client.post(f"{API}/studies", json={"title": "T", "design": "other", "target_enrollment": -1})
    assert response.status_code == 400
    assert any(
        "target_enrollment" in (e.get("message", "") + str(e.get("field"))) for e in response.json()["errors"]
    )


def test_nul_byte_in_query_is_handled(client: TestClient[Any]) -> None:
    response = client.get(f"{API}/studies", params={"condition": "a\x00b"})
    assert response.status_code in (200, 400)


def test_unknown_ids_and_paths_are_404(client: TestClient[Any]) -> None:
    for path in ("studies/0190a5b0-0000-7000-8000-000000000000", "nothing-here", "studies/a/b/c/d"):
        response = client.get(f"{API}/{path}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_malformed_id_is_a_400_naming_the_path_parameter(client: TestClient[Any]) -> None:
    for path, name in (
        ("studies/not-a-uuid", "id"),
        ("studies/not-a-uuid/survival", "study_id"),
        ("patients/123", "id"),
    ):
        response = client.get(f"{API}/{path}")
        assert response.status_code == 400, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"] == [
            {"message": f"path parameter `{name}` must be a UUID", "field": name, "source": "path"}
        ]


def test_an_unknown_body_field_is_named_with_its_json_pointer(client: TestClient[Any]) -> None:
    for body, pointer, field in (
        ({"title": "T", "design": "other", "pad": 1}, "/pad", "pad"),
        ({"title": "T", "design": "other", "publication": {"pad": 1}}, "/publication/pad", "publication.pad"),
        (
            {"title": "T", "design": "other", "target_enrollment": "x"},
            "/target_enrollment",
            "target_enrollment",
        ),
    ):
        response = client.post(f"{API}/studies", json=body)
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert (error["pointer"], error["field"], error["source"]) == (pointer, field, "body")


def test_method_not_allowed_keeps_allow_header(client: TestClient[Any]) -> None:
    response = client.put(f"{API}/studies", json={})
    assert response.status_code == 405
    assert "allow" in response.headers


def test_huge_query_numbers_are_400(client: TestClient[Any]) -> None:
    assert client.get(f"{API}/studies", params={"offset": 10**30}).status_code == 400
    assert client.get(f"{API}/patients", params={"age_min": "1e400"}).status_code == 400


def test_errors_carry_no_sql_or_traceback(client: TestClient[Any]) -> None:
    study = f.study(client)
    f.patient(client, study["id"])
    response = client.post(
        f"{API}/patients", json={"study_id": study["id"], "subject_code": "P1", "diagnosis": "AML"}
    )
    text = response.text.lower()
    assert response.status_code == 409
    assert "select" not in text and "insert" not in text and "traceback" not in text


def test_connection_failures_are_503_but_other_os_errors_stay_500() -> None:
    from litestar import Litestar, get
    from litestar.testing import TestClient as PlainClient

    from service.errors import EXCEPTION_HANDLERS

    @get("/refused", sync_to_thread=False)
    def refused() -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    @get("/every-address", sync_to_thread=False)
    def every_address() -> None:
        raise OSError("Multiple exceptions: [Errno 111] Connect call failed")

    @get("/own-bug", sync_to_thread=False)
    def own_bug() -> None:
        raise FileNotFoundError("a file the service itself needed")

    app = Litestar(
        [refused, every_address, own_bug], exception_handlers=EXCEPTION_HANDLERS, logging_config=None
    )
    with PlainClient(app) as plain:
        for path in ("/refused", "/every-address"):
            response = plain.get(path)
            assert response.status_code == 503 and response.headers["retry-after"] == "5", path
        assert plain.get("/own-bug").status_code == 500
