"""Hostile input (reliability audit D1, D4–D8, D12–D15, de-identification gaps): every bad request
is a clear problem+json answer that changes nothing, and nothing a client sends can stall the
event loop or reach the logs or the append-only trail."""

import logging
import re._parser as sre_parse  # the stdlib regex parser (sre_parse is deprecated)
from typing import Any

import pytest
from litestar.testing import TestClient

from service.common import deidentification
from tests import factories as f

API = "/api/v1"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"title": "\xff\xfe", "design": "case_series"}', "not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),  # used to be a RecursionError (500)
        (b'{"title": ', "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400_naming_the_problem(client: TestClient[Any], body: bytes, says: str) -> None:
    response = client.post(f"{API}/studies", content=body, headers={"content-type": "application/json"})
    assert says in _problem(response, 400)["detail"]
    assert client.get(f"{API}/studies").json()["total"] == 0


@pytest.mark.parametrize(
    ("collection", "field", "value"),
    [("patients", "age_years", "90"), ("patients", "ecog", 1.5), ("adverse-events", "serious", 0)],
)
def test_wrong_json_types_are_refused_not_coerced(
    client: TestClient[Any], collection: str, field: str, value: Any
) -> None:
    study = f.study(client)
    patient = f.patient(client, study["id"])
    base = (
        {"study_id": study["id"], "subject_code": "X", "diagnosis": "AML"}
        if collection == "patients"
        else {"patient_id": patient["id"], "term": "Anemia", "grade": 2}
    )
    detail = _problem(client.post(f"{API}/{collection}", json={**base, field: value}), 400)["detail"]
    assert f"$.{field}" in detail
    patched = client.patch(f"{API}/patients/{patient['id']}", json={"age_years": "42"})
    assert "$.age_years" in _problem(patched, 400)["detail"]


def test_identifiers_with_non_ascii_digits_are_refused(client: TestClient[Any]) -> None:
    response = client.post(
        f"{API}/studies", json={"title": "x", "design": "case_series", "registry_ids": ["NCT٠١٢٣٤٥٦٧"]}
    )
    _problem(response, 400)


def test_patterns_are_linear_time() -> None:
    """No de-identification pattern repeats anything without an upper bound, so matching tries a
    bounded number of steps per character (the old e-mail pattern was quadratic on long runs)."""
    for what, pattern in deidentification.PATTERNS.items():
        assert not _has_unbounded_class_run(sre_parse.parse(pattern.pattern, pattern.flags)), what


def _has_unbounded_class_run(tree: Any) -> bool:
    """True when a pattern repeats anything without an upper bound (e.g. `[a-z]+`, `\\s*`)."""
    for op, arg in tree:
        if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
            if arg[1] == sre_parse.MAXREPEAT:
                return True
            if _has_unbounded_class_run(arg[2]):
                return True
        elif (op == sre_parse.SUBPATTERN and _has_unbounded_class_run(arg[-1])) or (
            op == sre_parse.BRANCH and any(_has_unbounded_class_run(b) for b in arg[1])
        ):
            return True
    return False


def test_a_large_adversarial_body_is_checked_off_the_event_loop(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above OFF_LOOP_CHARS the check runs in a worker thread (behaviour, not timing)."""
    import threading

    threads: list[str] = []
    original = deidentification.check_free_text

    def spy(values: dict[str, Any], prefix: str = "") -> None:
        threads.append(threading.current_thread().name)
        original(values, prefix)

    monkeypatch.setattr(deidentification, "check_free_text", spy)
    study = f.study(client)
    big = ("a" * 60 + " ") * 3000  # 183 kB of letter runs without an @
    response = client.post(
        f"{API}/reported-results",
        json={
            "study_id": study["id"],
            "measure": "m",
            "provenance": [{"source_document": "d", "location": "l", "quote": big[:20_000]}] * 9,
        },
    )
    assert response.status_code == 201, response.text
    assert threads and threads[0] != threading.main_thread().name and "MainThread" not in threads[0]
    hostile = client.post(
        f"{API}/studies", json={"title": "x", "design": "case_series", "summary": "a" * 19_000 + "@b.co"}
    )
    assert "e-mail" in _problem(hostile, 422)["detail"]


def test_change_reason_is_utf8_bounded_and_de_identified(client: TestClient[Any]) -> None:
    patient = f.patient(client, f.study(client)["id"])
    url = f"{API}/patients/{patient['id']}"
    reason = "Korrektur nach Rücksprache – Größe"
    ok = client.patch(url, json={"ecog": 1}, headers={"X-Change-Reason": reason.encode("utf-8")})
    assert ok.status_code == 200
    [last] = client.get(f"{url}/history").json()["items"][-1:]
    assert last["reason"] == reason
    assert "UTF-8" in _problem(_raw_patch(client, url, {"ecog": 2}, b"\xe9t\xe9"), 400)["detail"]  # Latin-1
    long = client.patch(url, json={"ecog": 2}, headers={"X-Change-Reason": "x" * 501})
    assert "500" in _problem(long, 400)["detail"]
    leaky = client.patch(url, json={"ecog": 2}, headers={"X-Change-Reason": "asked by j.doe@example.org"})
    assert "X-Change-Reason" in _problem(leaky, 422)["detail"]
    assert client.get(url).json()["ecog"] == 1
    assert all("example.org" not in (e["reason"] or "") for e in client.get(f"{url}/history").json()["items"])


def test_a_reason_holding_an_identifier_is_refused_on_every_delete_and_ignored_on_reads(
    client: TestClient[Any],
) -> None:
    """Every write reads X-Change-Reason into the trail, deletes included (they answered an
    undocumented 422 once); a read records nothing, so the header does not fail it."""
    study = f.study(client)
    patient = f.patient(client, study["id"])
    leaky = {"X-Change-Reason": "per mail from j.doe@example.org"}
    for url in (f"{API}/patients/{patient['id']}", f"{API}/studies/{study['id']}"):
        problem = _problem(client.delete(url, headers=leaky), 422)
        assert "X-Change-Reason" in problem["detail"]
        assert problem["errors"] == [
            {"message": problem["detail"], "field": "X-Change-Reason", "source": "header"}
        ]
        read = client.get(url, headers=leaky)
        assert read.status_code == 200, read.text  # still there, and readable with the header
    assert client.post(f"{API}/studies/{study['id']}/lock", json={"reason": "frozen"}).status_code == 200
    _problem(client.delete(f"{API}/studies/{study['id']}/lock", headers=leaky), 422)
    assert client.get(f"{API}/studies/{study['id']}").json()["lock"] is not None
    history = client.get(f"{API}/studies/{study['id']}/history", headers=leaky)
    assert history.status_code == 200, history.text
    assert all("example.org" not in (e["reason"] or "") for e in history.json()["items"])


def test_every_write_that_takes_a_reason_documents_its_422(client: TestClient[Any]) -> None:
    document = client.get("/docs/openapi.json").json()
    writes = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch", "delete")
    ]
    assert sum(method == "delete" for method, _, _ in writes) >= 10
    for method, path, operation in writes:
        assert "422" in operation["responses"], f"{method} {path}"
    unlock = document["paths"]["/api/v1/studies/{id}/lock"]["delete"]
    assert "X-Change-Reason" in [p["name"] for p in unlock["parameters"] if p["in"] == "header"]


def _raw_patch(client: TestClient[Any], url: str, body: dict[str, Any], reason: bytes) -> Any:
    """PATCH with header bytes sent as they are (the test client re-encodes str headers as UTF-8,
    as no real client sending Latin-1 would), on the app's own event loop."""
    import httpx

    etag = client.get(url).headers["etag"]

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as raw:
            headers = [
                (b"authorization", client.headers["Authorization"].encode()),
                (b"if-match", etag.encode()),
                (b"x-change-reason", reason),
            ]
            return await raw.patch(url, json=body, headers=headers)

    return client.blocking_portal.call(send)


def test_audit_listing_far_future_offset_is_422(client: TestClient[Any]) -> None:
    response = client.get(f"{API}/audit", params={"since": "9999-12-31T23:59:59-14:00"})
    assert "representable" in _problem(response, 422)["detail"]


@pytest.mark.parametrize(
    "path", ["/docs-assets/swagger-ui.css%00.py", "/docs-assets/../app.py", "/docs/nowhere"]
)
def test_docs_edges_answer_problem_json_404(client: TestClient[Any], path: str) -> None:
    _problem(client.get(path), 404)


def test_precondition_problems_have_their_own_type(client: TestClient[Any]) -> None:
    study = f.study(client)
    url = f"{API}/studies/{study['id']}"
    stale = client.patch(url, json={"title": "a"}, headers={"If-Match": '"99"'})
    assert _problem(stale, 412)["type"] == "/problems/precondition-failed"
    missing = client.patch(url, json={"title": "a"}, headers={"If-Match": ""})
    assert missing.status_code in (412, 428)
    assert _problem(missing, missing.status_code)["type"].startswith("/problems/precondition-")


def test_access_log_never_carries_the_query_string(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.access")
    refused = client.get(
        f"{API}/studies", params={"access_token": "lor_secret-in-query", "condition": "relapsed after MRN"}
    )
    assert refused.status_code == 400  # unknown parameters; their values are never echoed
    assert "lor_secret-in-query" not in refused.text and "relapsed" not in refused.text
    client.get(f"{API}/studies", params={"condition": "relapsed after MRN"})
    lines = [r.__dict__ for r in caplog.records if r.name == "service.access"]
    assert [line["status"] for line in lines if line["route"] == "/api/v1/studies"][-2:] == [400, 200], lines
    assert "lor_secret-in-query" not in str(lines) and "relapsed" not in str(lines)
