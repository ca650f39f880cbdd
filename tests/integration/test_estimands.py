"""Estimands on messy data: undated events are never censored, responses count only for the
study treatment by default, empty assessments do not exist, MRD rates stand on their own, and
adverse-event terms are one canonical term, whatever the case they are given in."""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import Boolean, Integer, literal, select, union_all

from service.analytics.estimands import endpoints as estimands
from tests import factories as f
from tests.integration.test_seed import load, study

API = "/api/v1"


def _relapse_cohort(client: TestClient[Any], undated_relapse: bool) -> dict[str, Any]:
    """Four patients in CR on day 29: one relapses on day 118, one has a relapse (dated or not),
    two are followed to day 200 without an event."""
    s = f.study(client)
    for i, relapse_day in enumerate([118, None if undated_relapse else 60, 0, 0]):
        p = f.patient(client, s["id"], subject_code=f"P{i}")
        f.response(client, p["id"], study_day=29, category="CR")
        if relapse_day != 0:
            f.event(client, p["id"], study_day=relapse_day, timing_text="within six months")
        else:
            f.event(client, p["id"], event_type="last_follow_up", study_day=200)
    return s


def test_an_undated_relapse_withholds_every_estimate_it_could_change(client: TestClient[Any]) -> None:
    s = _relapse_cohort(client, undated_relapse=True)
    params = {"endpoint": "RFS", "times": "100", "tau": "150"}
    body = client.get(f"{API}/studies/{s['id']}/survival", params=params).json()
    [group] = body["groups"]
    # the curve from the three dated patients would drop P1's relapse: nothing is estimated
    assert group["n"] == 3 and group["events"] is None
    assert body["excluded_by_reason"] == {estimands.UNDATED_EVENT: 1}
    assert group["excluded"] == {estimands.UNDATED_EVENT: 1}
    assert group["not_computable"] is not None and "undated" in group["not_computable"]
    assert group["curve"] == [] and group["at_risk"] == [] and group["rmst"] is None
    assert group["median"]["time"] is None and group["median"]["reached"] is False
    assert group["follow_up"]["time"] is None
    assert group["landmarks"][0]["survival"] is None
    assert body["undated_events"] == {"rule": "withhold", "patients": 1, "subject_codes": ["P1"]}
    assert any(estimands.UNDATED_EVENT in w for w in body["warnings"])

    excluded = client.get(
        f"{API}/studies/{s['id']}/survival", params={**params, "undated_events": "exclude"}
    ).json()
    [group] = excluded["groups"]
    assert (group["n"], group["events"], group["not_computable"]) == (3, 1, None)
    # P0 relapses 89 days after CR, P2 and P3 are followed 171: S(100) = 2/3 without P1
    assert group["landmarks"][0]["survival"] == pytest.approx(2 / 3) and group["rmst"] is not None
    assert excluded["undated_events"] == {"rule": "exclude", "patients": 1, "subject_codes": ["P1"]}
    assert any("can bias" in w for w in excluded["warnings"])
    assert excluded["method"]["undated_events"] != body["method"]["undated_events"]

    rows = client.get(f"{API}/studies/{s['id']}/time-to-event", params={"endpoint": "RFS"}).json()
    assert [r["subject_code"] for r in rows["rows"]] == ["P0", "P2", "P3"]
    assert [(e["subject_code"], e["reason"]) for e in rows["excluded"]] == [("P1", estimands.UNDATED_EVENT)]
    assert rows["excluded_by_reason"] == {estimands.UNDATED_EVENT: 1}


def test_the_same_cohort_with_the_relapse_dated_is_estimable(client: TestClient[Any]) -> None:
    s = _relapse_cohort(client, undated_relapse=False)
    [group] = client.get(f"{API}/studies/{s['id']}/survival", params={"endpoint": "RFS"}).json()["groups"]
    assert (group["n"], group["events"], group["not_computable"]) == (4, 2, None)
    assert group["median"]["reached"] is True


def test_an_undated_death_is_never_an_os_censoring(client: TestClient[Any]) -> None:
    s = f.study(client)
    dead = f.patient(client, s["id"], subject_code="D")
    f.treatment(client, dead["id"], start_day=1, end_day=30)
    f.event(client, dead["id"], event_type="death", study_day=None, timing_text="later")
    alive = f.patient(client, s["id"], subject_code="A")
    f.event(client, alive["id"], event_type="last_follow_up", study_day=300)
    body = client.get(f"{API}/studies/{s['id']}/survival").json()
    [group] = body["groups"]
    assert group["n"] == 1 and group["excluded"] == {estimands.UNDATED_EVENT: 1}
    assert group["not_computable"] is not None and group["events"] is None


def _two_lines(client: TestClient[Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One patient: study regimen from day 1, salvage from day 60 (off study)."""
    s = f.study(client)
    p = f.patient(client, s["id"])
    study_line = f.treatment(client, p["id"], start_day=1, end_day=28)
    salvage = f.treatment(client, p["id"], phase="salvage", start_day=60, on_study=False)
    return s, p, {"study": study_line, "salvage": salvage}


def test_a_response_after_salvage_counts_only_when_asked(client: TestClient[Any]) -> None:
    s, p, lines = _two_lines(client)
    f.response(client, p["id"], study_day=28, category="NR", treatment_id=lines["study"]["id"])
    f.response(client, p["id"], study_day=90, category="CR")  # placed by its day: after salvage
    url = f"{API}/studies/{s['id']}/response-rates"
    body = client.get(url).json()
    [group] = body["groups"]
    assert (group["responders"], group["denominator"]) == (0, 1)
    assert group["assessments_excluded"] == {estimands.AFTER_OFF_STUDY: 1}
    assert body["treatment_scope"] == "study_treatment" and "study treatment" in body["method"]["lines"]
    every = client.get(url, params={"treatment_scope": "any_treatment"}).json()["groups"][0]
    assert every["responders"] == 1 and every["assessments_excluded"] == {}


def test_a_response_linked_to_an_off_study_line_or_before_day_1_does_not_count(
    client: TestClient[Any],
) -> None:
    s, p, lines = _two_lines(client)
    f.response(client, p["id"], study_day=None, category="CR", treatment_id=lines["salvage"]["id"])
    f.response(client, p["id"], study_day=-5, category="CR")
    f.response(client, p["id"], study_day=None, category="CR")
    [group] = client.get(f"{API}/studies/{s['id']}/response-rates").json()["groups"]
    assert group["responders"] == 0
    assert group["assessments_excluded"] == {
        estimands.OFF_STUDY_TREATMENT: 1,
        estimands.BEFORE_DAY_1: 1,
        estimands.NOT_PLACEABLE: 1,
    }


def test_rfs_starts_at_the_first_remission_of_the_study_treatment(client: TestClient[Any]) -> None:
    s, p, lines = _two_lines(client)
    f.response(client, p["id"], study_day=-10, category="CR")  # remission before the study
    f.response(client, p["id"], study_day=28, category="CR", treatment_id=lines["study"]["id"])
    [row] = client.get(f"{API}/studies/{s['id']}/time-to-event", params={"endpoint": "RFS"}).json()["rows"]
    assert row["origin_day"] == 28


def test_a_response_assessment_without_a_result_is_refused(client: TestClient[Any]) -> None:
    s = f.study(client)
    p = f.patient(client, s["id"])
    response = client.post(
        f"{API}/outcomes",
        json={"kind": "response", "patient_id": p["id"], "study_day": 14, "category_text": "garbled cell"},
    )
    assert response.status_code == 422 and response.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert "needs a result" in response.json()["detail"]
    assert client.get(f"{API}/outcomes", params={"patient_id": p["id"]}).json()["total"] == 0
    kept = f.response(client, p["id"], category=None, mrd_status="negative")
    cleared = client.patch(f"{API}/outcomes/{kept['id']}", json={"mrd_status": None})
    assert cleared.status_code == 422


def test_an_assessment_may_only_name_a_treatment_of_its_own_patient(client: TestClient[Any]) -> None:
    s = f.study(client)
    p, q = f.patient(client, s["id"], subject_code="P"), f.patient(client, s["id"], subject_code="Q")
    theirs = f.treatment(client, q["id"])
    response = client.post(
        f"{API}/outcomes",
        json={"kind": "response", "patient_id": p["id"], "category": "CR", "treatment_id": theirs["id"]},
    )
    assert response.status_code == 422 and "another patient" in response.json()["detail"]


def test_deleting_a_treatment_unlinks_its_assessments(client: TestClient[Any]) -> None:
    _, p, lines = _two_lines(client)
    assessed = f.response(client, p["id"], study_day=28, category="CR", treatment_id=lines["study"]["id"])
    refused = client.delete(f"{API}/treatments/{lines['study']['id']}")
    assert refused.status_code == 409 and "response assessments" in refused.json()["detail"]
    assert (
        client.delete(f"{API}/treatments/{lines['study']['id']}", params={"cascade": "true"}).status_code
        == 204
    )
    assert client.get(f"{API}/outcomes/{assessed['id']}").json()["treatment_id"] is None


def test_mrd_rate_without_a_category_counts_only_known_mrd(client: TestClient[Any]) -> None:
    s = f.study(client)
    for i, (category, mrd) in enumerate(
        [(None, "negative"), ("CR", "negative"), ("NR", "positive"), ("CR", None)]
    ):
        p = f.patient(client, s["id"], subject_code=f"P{i}")
        f.response(client, p["id"], study_day=14, category=category, mrd_status=mrd)
    url = f"{API}/studies/{s['id']}/response-rates"
    params = {"categories": "any", "mrd": "negative", "denominator": "evaluable"}
    body = client.get(url, params=params).json()
    [group] = body["groups"]
    assert (group["responders"], group["denominator"]) == (2, 3)
    assert body["categories"] == [] and "any category" in body["method"]["categories"]
    assert "MRD status is known" in body["method"]["denominator"]
    assert client.get(url, params={"categories": "any,CR"}).status_code == 400


def test_adverse_event_terms_are_canonical_and_grouped_case_insensitively(client: TestClient[Any]) -> None:
    s = f.study(client)
    p, q = f.patient(client, s["id"], subject_code="P"), f.patient(client, s["id"], subject_code="Q")
    first = f.adverse_event(client, p["id"], term="neutrophil COUNT decreased", verbatim_term="neutropenia")
    assert (first["term"], first["meddra_code"], first["verbatim_term"]) == (
        "Neutrophil count decreased",
        "10029366",
        "neutropenia",
    )
    f.adverse_event(client, q["id"], term="Neutrophil count decreased", grade=4)
    f.adverse_event(client, p["id"], term="Transaminase elevation", grade=1)
    f.adverse_event(client, q["id"], term="TRANSAMINASE ELEVATION", grade=2)
    rows = client.get(f"{API}/studies/{s['id']}/adverse-event-incidence").json()["rows"]
    counts = {r["term"].lower(): r["groups"][0]["any_grade"]["n"] for r in rows}
    assert counts == {"neutrophil count decreased": 2, "transaminase elevation": 2}
    listed = client.get(f"{API}/adverse-events", params={"term": "NEUTROPHIL count decreased"}).json()
    assert listed["total"] == 2
    assert (
        client.post(
            f"{API}/adverse-events",
            json={"patient_id": p["id"], "term": "Anemia", "grade": 2, "meddra_code": "1"},
        ).status_code
        == 400
    )  # the code is the server's, from the canonical term


def test_codes_are_fields_the_api_filters_on(client: TestClient[Any]) -> None:
    s = f.study(client)
    f.patient(
        client, s["id"], subject_code="T", diagnosis="T-ALL", icd10_code="C91.0", icdo3_morphology="9837/3"
    )
    f.patient(
        client, s["id"], subject_code="M", diagnosis="AML", icd10_code="C92.0", icdo3_morphology="9861/3"
    )
    codes = lambda **q: [p["subject_code"] for p in client.get(f"{API}/patients", params=q).json()["items"]]  # noqa: E731
    assert codes(icd10="C92.0") == ["M"] and codes(icd10="C91") == ["T"] and codes(icdo3="9837/3") == ["T"]
    assert (
        client.post(
            f"{API}/patients",
            json={"study_id": s["id"], "subject_code": "X", "diagnosis": "AML", "icd10_code": "C٩2.0"},
        ).status_code
        == 400
    )
    f.agent(client, name="daratumumab", atc_code="L01FC01")
    f.agent(client, name="cytarabine", atc_code="L01BC01")
    names = lambda atc: [a["name"] for a in client.get(f"{API}/agents", params={"atc": atc}).json()["items"]]  # noqa: E731
    assert names("L01FC01") == ["daratumumab"] and sorted(names("L01")) == ["cytarabine", "daratumumab"]


# --- the seed dataset: the answers a clinician reads ---------------------------------------


@pytest.fixture
def seeded(client: TestClient[Any], database_url: str) -> TestClient[Any]:
    load(database_url)
    return client


@pytest.mark.parametrize(
    ("document", "responders", "denominator"),
    [
        ("000_e26ba34dc317a2d3.txt", 1, 1),  # CRi on day 32 of Dara-VA-HAA (the pre-study CR does not count)
        ("001_eee766f12762b4c9.txt", 4, 6),
        ("002_7c568f0c2bc5759f.txt", 1, 1),  # molecular CR after dara-ven (induction CR does not count)
        ("004_99c9fed070f33cc4.txt", 12, 13),  # the CR after salvage Hyper-CVAD does not count
    ],
)
def test_default_response_rate_of_each_seed_study(
    seeded: TestClient[Any], document: str, responders: int, denominator: int
) -> None:
    s = study(seeded, document)
    [group] = seeded.get(f"{API}/studies/{s['id']}/response-rates").json()["groups"]
    assert (group["responders"], group["denominator"]) == (responders, denominator)


def test_seed_004_with_every_line_counts_the_salvage_cr(seeded: TestClient[Any]) -> None:
    s = study(seeded, "004_99c9fed070f33cc4.txt")
    url = f"{API}/studies/{s['id']}/response-rates"
    [group] = seeded.get(url, params={"treatment_scope": "any_treatment"}).json()["groups"]
    assert (group["responders"], group["denominator"]) == (13, 13)


def test_seed_004_mrd_negativity_at_day_14_21_is_the_papers_11_of_12(seeded: TestClient[Any]) -> None:
    s = study(seeded, "004_99c9fed070f33cc4.txt")
    params = {"categories": "any", "mrd": "negative", "denominator": "evaluable"}
    url = f"{API}/studies/{s['id']}/response-rates"
    [group] = seeded.get(url, params={**params, "timepoint": "day 14-21"}).json()["groups"]
    assert (group["responders"], group["denominator"]) == (11, 12)
    checks = {
        r["measure"]: r for r in seeded.get(f"{API}/studies/{s['id']}/reconciliation").json()["results"]
    }
    for measure in ("MRD negativity by day 21", "MRD negativity at days 14-21 (text)"):
        [patient_level] = [c for c in checks[measure]["checks"] if c["check"] == "patient_level"]
        assert patient_level["verdict"] == "consistent", patient_level


def test_seed_001_rfs_is_not_computable_rather_than_reached(seeded: TestClient[Any]) -> None:
    s = study(seeded, "001_eee766f12762b4c9.txt")
    body = seeded.get(
        f"{API}/studies/{s['id']}/survival", params={"endpoint": "RFS", "time_unit": "months"}
    ).json()
    [group] = body["groups"]
    assert group["median"]["time"] is None and group["not_computable"] is not None
    assert body["excluded_by_reason"][estimands.UNDATED_EVENT] == 1
    results = {
        r["measure"]: r for r in seeded.get(f"{API}/studies/{s['id']}/reconciliation").json()["results"]
    }
    assert results["Median leukemia-free survival"]["verdict"] == "not_computable"


def test_seed_003_carries_no_results_of_another_trial(seeded: TestClient[Any]) -> None:
    s = study(seeded, "003_5211f19740d87809.txt")
    results = seeded.get(f"{API}/reported-results", params={"study_id": s["id"]}).json()["items"]
    assert not any("NCT03384654" in (r["measure"] + (r["population"] or "")) for r in results)


def test_the_survival_plot_says_when_the_median_is_withheld(client: TestClient[Any]) -> None:
    import msgspec

    from service.analytics.plots.figures import kaplan_meier_figure
    from service.analytics.schemas import Survival

    s = _relapse_cohort(client, undated_relapse=True)
    body = client.get(f"{API}/studies/{s['id']}/survival", params={"endpoint": "RFS"}).content
    figure = kaplan_meier_figure(msgspec.json.decode(body, type=Survival), "RFS", ci_bands=False)
    # the only group is withheld: the figure is the reason, no curve of the dated patients
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any("not computable" in t and "undated" in t for t in texts), texts
    assert not figure.axes[0].get_lines()
    dated = _relapse_cohort(client, undated_relapse=False)
    body = client.get(f"{API}/studies/{dated['id']}/survival", params={"endpoint": "RFS"}).content
    figure = kaplan_meier_figure(msgspec.json.decode(body, type=Survival), "RFS", ci_bands=False)
    assert "not computable" not in figure.axes[0].get_title()


def test_an_assessment_in_scope_is_one_without_an_exclusion_on_every_combination(
    client: TestClient[Any],
) -> None:
    """The filter the remission origins use (plain comparisons, which the planner can estimate)
    keeps exactly the assessments that `assessment_exclusion` finds no reason to exclude: on
    or off study or no treatment, dated or not, before or after day 1, before, on or after an
    off-study treatment's start, or none."""
    grid = [
        (on_study, day, off)
        for on_study in (True, False, None)
        for day in (None, -3, 0, 1, 20, 40)
        for off in (None, 1, 20, 30)
    ]
    cells = union_all(
        *(
            select(
                literal(a, Boolean).label("on_study"),
                literal(d, Integer).label("day"),
                literal(o, Integer).label("off"),
            )
            for a, d, o in grid
        )
    ).subquery()
    on_study, day, off = cells.c.on_study, cells.c.day, cells.c.off
    statement = select(
        on_study,
        day,
        off,
        estimands.assessment_exclusion(on_study, day, off).label("exclusion"),
        estimands.assessment_in_scope(on_study, day, off).label("in_scope"),
    )

    async def evaluate() -> list[Any]:
        async with client.app.state.session_factory() as session:
            return list((await session.execute(statement)).all())

    rows = client.blocking_portal.call(evaluate)
    assert len(rows) == len(grid)
    for row in rows:
        assert row.in_scope is not None, row
        assert bool(row.in_scope) == (row.exclusion is None), row
    # both kinds occur: the grid is not all in scope or all out
    assert {bool(row.in_scope) for row in rows} == {True, False}


KINDS = (estimands.INDUCTION_FAILURE, *estimands.EVENT_PRIORITY, "other")


@given(
    events=st.lists(
        st.tuples(st.integers(0, 5), st.integers(-400, 9000), st.sampled_from(KINDS)), min_size=1, max_size=40
    )
)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_each_patients_first_event_is_the_earliest_by_day_then_priority(
    client: TestClient[Any], events: list[tuple[int, int, str]]
) -> None:
    """`_first_event` against the definition: per patient the smallest (day, priority) of its
    events, an induction failure before a relapse before progression, GVHD and death on one day,
    any day (negative ones too); a kind outside them ranks last and has no type."""
    rows = union_all(
        *(
            select(
                literal(pid, Integer).label("pid"),
                literal(day, Integer).label("day"),
                literal(kind).label("kind"),
            )
            for pid, day, kind in events
        )
    ).subquery()
    first = estimands._first_event(rows)

    async def evaluate() -> list[Any]:
        async with client.app.state.session_factory() as session:
            return list((await session.execute(select(first))).all())

    got = {row.pid: (row.event_day, row.event_type) for row in client.blocking_portal.call(evaluate)}
    expected: dict[int, tuple[int, str | None]] = {}
    for pid in {pid for pid, _, _ in events}:
        day, rank = min((d, KINDS.index(k)) for p, d, k in events if p == pid)
        expected[pid] = (day, KINDS[rank] if KINDS[rank] != "other" else None)
    assert got == expected
