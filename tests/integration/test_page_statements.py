"""Pages share one statement per shape of their filters (service.db.page_statements): any
combination of filters, sort, limit and offset answers exactly what the page built afresh
answers; a warm page compiles nothing and, on Postgres, is one statement on the driver; a page
past the end still counts its total; a caller whose grants limit what it sees keeps the
statement built with its scope's condition."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import event

from service.db import page_statements
from tests import factories as f
from tests.integration.test_driver_reads import sent_to_driver
from tests.integration.test_query_counts import counted

API = "/api/v1"


@contextmanager
def built_afresh() -> Iterator[None]:
    """The app building every page's statement per request, as it did before the shared ones."""
    with mock.patch.object(page_statements.page_statements, "statement", return_value=None):
        yield


@pytest.fixture
def world(client: TestClient[Any]) -> dict[str, Any]:
    """A study of 14 patients over two arms and two sites, with ages (some missing), sexes,
    diagnoses, statuses and ICD-10 codes that different filters pick apart; and another study."""
    study = f.study(client)
    arms = [f.arm(client, study["id"], label=f"Arm {i}")["id"] for i in range(2)]
    sites = [f.site(client, study["id"], code=f"S{i}")["id"] for i in range(2)]
    diagnoses = ["B-ALL", "T-ALL", "AML"]
    codes = ["C91.0", "C92.0", "C91.5", None]
    for i in range(14):
        fields: dict[str, Any] = {
            "subject_code": f"S{i:02d}",
            "diagnosis": diagnoses[i % 3],
            "arm_id": arms[i % 2] if i % 5 else None,
            "site_id": sites[(i // 2) % 2],
            "sex": ["female", "male"][i % 2],
        }
        if i % 4:
            fields["age_years"] = 5.0 * i
        if codes[i % 4]:
            fields["icd10_code"] = codes[i % 4]
        f.patient(client, study["id"], **fields)
    other = f.study(client, title="another study")
    f.patient(client, other["id"], subject_code="X1", diagnosis="AML")
    return {"study": study["id"], "arms": arms, "sites": sites}


FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "diagnosis": st.sampled_from(["B-ALL", "T-ALL", "AML"]),
        "sex": st.sampled_from(["female", "male"]),
        "age_min": st.integers(0, 70),
        "age_max": st.integers(0, 70),
        "icd10": st.sampled_from(["C91", "C91.0", "C92.0", "C95"]),  # a category is a LIKE
        "arm": st.integers(0, 1),
        "site": st.integers(0, 1),
        "in_study": st.booleans(),
        "sort": st.sampled_from(["created", "-created", "subject_code", "-age_years", "age_years"]),
        "limit": st.integers(1, 6),
        "offset": st.integers(0, 16),
    },
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=FILTERS)
def test_a_shared_page_answers_as_one_built_afresh(
    client: TestClient[Any], world: dict[str, Any], chosen: dict[str, Any]
) -> None:
    params = {k: v for k, v in chosen.items() if k not in ("arm", "site", "in_study")}
    if chosen.get("in_study", True):
        params["study_id"] = world["study"]
    if "arm" in chosen:
        params["arm_id"] = world["arms"][chosen["arm"]]
    if "site" in chosen:
        params["site_id"] = world["sites"][chosen["site"]]
    shared = client.get(f"{API}/patients", params=params)
    assert shared.status_code == 200, shared.text
    with built_afresh():
        afresh = client.get(f"{API}/patients", params=params)
    assert shared.content == afresh.content
    assert shared.headers.get("link") == afresh.headers.get("link")
    body = shared.json()
    assert len(body["items"]) <= params.get("limit", 50)
    # The total is what the filters select, whether or not the page is past the end.
    with built_afresh():
        everything = client.get(f"{API}/patients", params={**params, "limit": 200, "offset": 0}).json()
    assert body["total"] == everything["total"] == len(everything["items"])


def test_a_warm_page_compiles_nothing_and_is_one_statement(
    client: TestClient[Any], world: dict[str, Any], backend: str
) -> None:
    engine = client.app.state.engine.sync_engine
    compiled: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if getattr(context, "cache_hit", None) in (engine.dialect.CACHE_MISS, engine.dialect.NO_CACHE_KEY):
            compiled.append(statement)

    def page(diagnosis: str, offset: int) -> dict[str, Any]:
        answer = client.get(
            f"{API}/patients",
            params={"study_id": world["study"], "diagnosis": diagnosis, "limit": 2, "offset": offset},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    page("AML", 0)  # warm: the shape's statement compiled once
    page("AML", 40)
    event.listen(engine, "before_cursor_execute", record)
    try:
        with sent_to_driver() as on_driver:
            with counted(client) as statements:
                first = page("T-ALL", 2)
            with counted(client) as past_end:
                beyond = page("B-ALL", 40)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert compiled == []
    assert len(first["items"]) == 2 and first["total"] == 5
    assert beyond["items"] == [] and beyond["total"] == 5
    if backend == "postgres":
        assert len(on_driver) == 3  # the page, then the past-the-end page and its count
    else:
        assert on_driver == []
    assert (len(statements), len(past_end)) == (1, 2)


def test_a_page_within_a_grant_keeps_its_scope(client: TestClient[Any], world: dict[str, Any]) -> None:
    """A caller limited to one site reads its pages through the statement built with its
    scope's condition: the other site's patients are neither listed nor counted."""
    token = client.post(
        f"{API}/tokens",
        json={
            "name": "site-0-reader",
            "grants": [{"study_id": world["study"], "sites": [world["sites"][0]], "role": "reader"}],
        },
    )
    assert token.status_code == 201, token.text
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    everyone = client.get(f"{API}/patients", params={"study_id": world["study"], "limit": 200}).json()
    mine = [p for p in everyone["items"] if p["site_id"] == world["sites"][0]]
    with sent_to_driver() as on_driver:
        scoped = client.get(
            f"{API}/patients", params={"study_id": world["study"], "limit": 200}, headers=headers
        )
    assert scoped.status_code == 200, scoped.text
    assert [p["id"] for p in scoped.json()["items"]] == [p["id"] for p in mine]
    assert scoped.json()["total"] == len(mine) < everyone["total"]
    assert on_driver == []
