"""A page of one study keeps its total with the study's data version (service.db.page_statements):
the next page of the same filters is not counted again while no write has changed the study, and
after any write its total is again what a count of the live data says."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.db.page_statements import PageStatements, page_statements
from tests import factories as f
from tests.databases import issue_token
from tests.integration.test_page_statements import built_afresh

API = "/api/v1"
SKEW = 1000


@contextmanager
def kept_wrong() -> Iterator[None]:
    """Every total kept SKEW too high: a page that answers it was not counted again."""
    keep = PageStatements.remember_total

    def skewed(self: PageStatements, plan: Any, version: int, total: int) -> None:
        keep(self, plan, version, total + SKEW)

    with mock.patch.object(PageStatements, "remember_total", skewed):
        yield


def _total(client: TestClient[Any], **params: Any) -> int:
    answer = client.get(f"{API}/patients", params={"limit": 2, **params})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def _counted(client: TestClient[Any], **params: Any) -> int:
    with built_afresh():
        return _total(client, **params)


def _study_with(client: TestClient[Any], diagnoses: list[str]) -> dict[str, Any]:
    study = f.study(client)
    for i, diagnosis in enumerate(diagnoses):
        f.patient(client, study["id"], subject_code=f"P{i:02d}", diagnosis=diagnosis)
    return study


def test_an_unchanged_study_is_not_counted_again_and_a_write_counts_anew(
    client: TestClient[Any], database_url: str
) -> None:
    study = _study_with(client, ["AML", "AML", "T-ALL"])
    aml = {"study_id": study["id"], "diagnosis": "AML"}
    with kept_wrong():
        assert _total(client, **aml) == 2  # counted, and kept (skewed)
        # The same filters at another offset: the kept total, not a count.
        assert _total(client, **aml, offset=1) == 2 + SKEW
        # Other filter values are kept apart.
        assert _total(client, study_id=study["id"], diagnosis="T-ALL") == 1
        # A caller whose grant limits what it sees is counted through its own statement.
        grants = [{"study_id": study["id"], "role": "reader"}]
        reader = issue_token(database_url, f"pt-{study['id'][:8]}", None, grants=grants)
        scoped = client.get(
            f"{API}/patients", params={**aml, "limit": 2}, headers={"Authorization": f"Bearer {reader}"}
        )
        assert scoped.status_code == 200 and scoped.json()["total"] == 2
        # A write to another study leaves this study's version, and its kept total, alone.
        f.patient(client, f.study(client)["id"], subject_code="ELSEWHERE", diagnosis="AML")
        assert _total(client, **aml) == 2 + SKEW
        # A write to this study changes its version: counted again.
        f.patient(client, study["id"], subject_code="P99", diagnosis="AML")
        assert _total(client, **aml) == 3


def test_a_page_past_the_end_and_a_list_of_no_study_are_counted(client: TestClient[Any]) -> None:
    study = _study_with(client, ["AML", "AML"])
    with kept_wrong():
        assert _total(client, study_id=study["id"]) == 2
        # No row to carry the kept total: the page past the end counts.
        assert _total(client, study_id=study["id"], offset=10) == 2
        everyone = _counted(client)
        assert _total(client) == _total(client) == everyone  # no study pinned: always counted


def _delete(client: TestClient[Any], patient_id: str) -> None:
    answer = client.delete(f"{API}/patients/{patient_id}", params={"cascade": "true"})
    assert answer.status_code == 204, answer.text


def _change(client: TestClient[Any], patient_id: str, diagnosis: str) -> None:
    record = client.get(f"{API}/patients/{patient_id}")
    answer = client.patch(
        f"{API}/patients/{patient_id}",
        json={"diagnosis": diagnosis},
        headers={"If-Match": record.headers["etag"]},
    )
    assert answer.status_code == 200, answer.text


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(["AML", "T-ALL", "B-ALL"])),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("change"), st.integers(0, 50), st.sampled_from(["AML", "T-ALL", "B-ALL"])),
        st.tuples(st.just("elsewhere"), st.sampled_from(["AML", "T-ALL"])),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_after_any_writes_every_total_is_what_a_count_says(
    client: TestClient[Any], steps: list[tuple[Any, ...]]
) -> None:
    study = _study_with(client, ["AML", "T-ALL", "AML", "B-ALL"])
    other = f.study(client)
    patients = [
        p["id"] for p in client.get(f"{API}/patients", params={"study_id": study["id"]}).json()["items"]
    ]
    filters = [
        {"study_id": study["id"]},
        *({"study_id": study["id"], "diagnosis": d} for d in ("AML", "T-ALL", "B-ALL")),
    ]
    for params in filters:  # every total kept before the writes
        _total(client, **params)
    for n, step in enumerate(steps):
        if step[0] == "create":
            patients.append(f.patient(client, study["id"], subject_code=f"N{n}", diagnosis=step[1])["id"])
        elif step[0] == "delete" and patients:
            _delete(client, patients.pop(step[1] % len(patients)))
        elif step[0] == "change" and patients:
            _change(client, patients[step[1] % len(patients)], step[2])
        elif step[0] == "elsewhere":
            f.patient(client, other["id"], subject_code=f"E{n}", diagnosis=step[1])
        for params in filters:
            for offset in (0, 1):
                assert _total(client, **params, offset=offset) == _counted(client, **params), (steps, params)
    assert _total(client, study_id=study["id"]) == len(patients)


@pytest.fixture(autouse=True)
def _no_totals_kept_between_tests() -> Iterator[None]:
    yield
    page_statements._totals.clear()
