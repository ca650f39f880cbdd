"""Reconciliation, cross-study evidence and duplicate detection, on constructed data and on the seed."""

from typing import Any

import pytest
from litestar.testing import TestClient

from service.analytics.pooling.meta import pool_proportions
from tests import factories as f
from tests.integration.test_seed import load, study

API = "/api/v1"
QUOTE = [{"source_document": "x.txt", "location": "Table 1", "quote": "as printed"}]


def _result(client: TestClient[Any], study_id: str, **fields: Any) -> dict[str, Any]:
    return f.create(
        client, "reported-results", {"study_id": study_id, "measure": "m", "provenance": QUOTE, **fields}
    )


def _verdicts(client: TestClient[Any], study_id: str) -> dict[str, Any]:
    body = client.get(f"{API}/studies/{study_id}/reconciliation").json()
    return {r["measure"]: r for r in body["results"]} | {"_summary": body["summary"]}


def test_internal_checks_each_verdict(client: TestClient[Any]) -> None:
    s = f.study(client)
    _result(client, s["id"], measure="pct ok", numerator=12, denominator=13, value=92.3, unit="%")
    _result(client, s["id"], measure="pct wrong", numerator=5, denominator=8, value=62.6, unit="%")
    _result(
        client,
        s["id"],
        measure="ci wilson",
        numerator=12,
        denominator=13,
        value=92.3,
        unit="%",
        ci_lower=66.7,
        ci_upper=98.6,
        ci_level=0.95,
    )
    _result(
        client,
        s["id"],
        measure="ci none",
        numerator=11,
        denominator=12,
        value=91.7,
        unit="%",
        ci_lower=64.6,
        ci_upper=99.6,
        ci_level=0.95,
    )
    _result(client, s["id"], measure="nothing", value=7.9, unit="months")
    verdicts = _verdicts(client, s["id"])
    assert verdicts["pct ok"]["verdict"] == "consistent"
    assert (
        verdicts["pct wrong"]["verdict"] == "inconsistent"
        and "62.50" in verdicts["pct wrong"]["checks"][0]["detail"]
    )
    ci = next(c for c in verdicts["ci wilson"]["checks"] if c["check"] == "confidence_interval")
    assert ci["verdict"] == "consistent" and "wilson" in ci["detail"]
    none = next(c for c in verdicts["ci none"]["checks"] if c["check"] == "confidence_interval")
    assert none["verdict"] == "inconsistent" and "no standard method" in none["detail"]
    assert verdicts["nothing"]["verdict"] == "not_computable"
    assert verdicts["_summary"] == {"consistent": 2, "inconsistent": 2, "not_computable": 1}


def test_p_value_and_patient_level_checks(client: TestClient[Any]) -> None:
    s = f.study(client)
    a, b = f.arm(client, s["id"], label="A"), f.arm(client, s["id"], label="B")
    for i in range(8):
        p = f.patient(client, s["id"], subject_code=f"A{i}", arm_id=a["id"], age_years=40 + i)
        if i < 5:
            f.adverse_event(client, p["id"], term="Cytokine release syndrome", grade=1)
    for i in range(5):
        p = f.patient(client, s["id"], subject_code=f"B{i}", arm_id=b["id"], age_years=60)
        if i < 1:
            f.adverse_event(client, p["id"], term="Cytokine release syndrome", grade=3)
    crs = {"type": "adverse_event_incidence", "term": "Cytokine release syndrome"}
    _result(
        client,
        s["id"],
        measure="p printed wrong",
        p_value=0.226,
        test="Fisher",
        definition={
            "type": "comparison",
            "test": "fisher_exact",
            "outcome": crs,
            "arm_ids": [a["id"], b["id"]],
            "printed_counts": [[5, 8], [1, 5]],
        },
    )
    _result(
        client,
        s["id"],
        measure="p right",
        p_value=0.266,
        definition={
            "type": "comparison",
            "test": "fisher_exact",
            "outcome": crs,
            "arm_ids": [a["id"], b["id"]],
            "printed_counts": [[5, 8], [1, 5]],
        },
    )
    _result(
        client,
        s["id"],
        measure="crs arm A",
        arm_id=a["id"],
        numerator=5,
        denominator=8,
        value=62.5,
        unit="%",
        definition=crs,
    )
    _result(client, s["id"], measure="crs all wrong", numerator=7, denominator=13, definition=crs)
    _result(
        client, s["id"], measure="grade 3", numerator=1, denominator=13, definition={**crs, "grade_min": 3}
    )
    _result(
        client,
        s["id"],
        measure="median age",
        value=47,
        definition={"type": "patient_attribute", "attribute": "age_years", "statistic": "median"},
    )
    _result(
        client,
        s["id"],
        measure="median OS",
        value=7.9,
        definition={"type": "survival", "endpoint": "OS", "statistic": "median", "time_unit": "months"},
    )
    verdicts = _verdicts(client, s["id"])
    wrong = verdicts["p printed wrong"]
    assert wrong["verdict"] == "inconsistent" and {c["check"] for c in wrong["checks"]} == {
        "p_value",
        "patient_level",
    }
    assert verdicts["p right"]["verdict"] == "consistent"
    assert verdicts["crs arm A"]["verdict"] == "consistent"
    assert (
        verdicts["crs all wrong"]["verdict"] == "inconsistent"
        and "patients affected 6, printed 7" in verdicts["crs all wrong"]["checks"][-1]["detail"]
    )
    assert verdicts["grade 3"]["verdict"] == "consistent"
    assert (
        verdicts["median age"]["verdict"] == "inconsistent"
        and "median is 46" in verdicts["median age"]["checks"][-1]["detail"]
    )
    assert verdicts["median OS"]["verdict"] == "not_computable"


def test_definition_refers_to_arms_of_the_same_study(client: TestClient[Any]) -> None:
    s, other = f.study(client), f.study(client)
    foreign = f.arm(client, other["id"])
    mine = f.arm(client, s["id"])
    response = client.post(
        f"{API}/reported-results",
        json={
            "study_id": s["id"],
            "measure": "x",
            "provenance": QUOTE,
            "p_value": 0.5,
            "definition": {
                "type": "comparison",
                "test": "fisher_exact",
                "outcome": {"type": "response_rate"},
                "arm_ids": [mine["id"], foreign["id"]],
            },
        },
    )
    assert response.status_code == 422


def test_evidence_pools_patient_level_rows_and_counts_linked_patients_once(client: TestClient[Any]) -> None:
    dara = f.agent(client, name="daratumumab", targets=["CD38"])
    studies = []
    for title, design, rows in [
        ("One", "case_series", [("CR", 95), ("NR", 90), ("CR", 20)]),
        ("Two", "case_report", [("CR", 85)]),
    ]:
        s = f.study(client, title=title, design=design)
        studies.append(s)
        for i, (category, cd38) in enumerate(rows):
            p = f.patient(
                client,
                s["id"],
                subject_code=f"{title}{i}",
                diagnosis="T-ALL",
                markers=[{"marker": "CD38", "percent_positive": cd38}],
            )
            f.treatment(client, p["id"], components=[{"agent_id": dara["id"]}])
            f.response(client, p["id"], category=category, mrd_status="negative")
    other = f.patient(client, studies[0]["id"], subject_code="untreated", diagnosis="T-ALL")
    f.response(client, other["id"], category="CR")
    body = client.get(
        f"{API}/evidence/response-rates", params={"target": "CD38", "diagnosis": "T-ALL", "mrd": "negative"}
    ).json()
    assert [(r["study_title"], r["events"], r["total"], r["source"]) for r in body["rows"]] == [
        ("One", 2, 3, "patient_level"),
        ("Two", 1, 1, "patient_level"),
    ]
    # the case report is shown but not pooled with the case series unless asked
    assert [r["not_pooled"] is None for r in body["rows"]] == [True, False]
    # one study left to pool: no pooled estimate, said why
    assert body["pooled"] is None and "at least 2" in body["not_computable"]
    assert body["rows"][1]["weight_percent"] == 0
    body = client.get(
        f"{API}/evidence/response-rates",
        params={"target": "CD38", "diagnosis": "T-ALL", "mrd": "negative", "include_case_reports": "true"},
    ).json()
    reference = pool_proportions([2, 1], [3, 1])
    assert reference is not None
    assert body["pooled"]["random_effects"]["estimate"] == pytest.approx(reference.random.estimate)
    assert body["pooled"]["continuity_corrected_rows"] == 1
    assert [r["weight_percent"] for r in body["rows"]] == pytest.approx(reference.weights)
    # two studies: a pooled estimate, but no prediction interval (that needs three)
    assert body["pooled"]["prediction_interval"] is None
    assert "at least 3" in body["pooled"]["prediction_interval_not_computable"]
    assert any("< 10" in w for w in body["warnings"])
    high = client.get(
        f"{API}/evidence/response-rates", params={"agent": "Daratumumab", "marker": "CD38", "marker_min": 80}
    ).json()
    assert [(r["events"], r["total"]) for r in high["rows"]] == [(1, 2), (1, 1)]
    one, two = (
        client.get(f"{API}/patients", params={"study_id": s["id"], "limit": 1}).json()["items"][0]
        for s in studies
    )
    assert (
        client.post(
            f"{API}/patient-links",
            json={"patient_a_id": one["id"], "patient_b_id": two["id"], "decision": "same"},
        ).status_code
        == 201
    )
    linked = client.get(f"{API}/evidence/response-rates", params={"target": "CD38"}).json()
    assert linked["patients_counted_once"] == 1 and sum(r["total"] for r in linked["rows"]) == 3
    assert (
        client.post(
            f"{API}/patient-links",
            json={"patient_a_id": two["id"], "patient_b_id": one["id"], "decision": "different"},
        ).status_code
        == 409
    )
    same_study = client.get(f"{API}/patients", params={"study_id": studies[0]["id"]}).json()["items"]
    assert (
        client.post(
            f"{API}/patient-links",
            json={
                "patient_a_id": same_study[0]["id"],
                "patient_b_id": same_study[1]["id"],
                "decision": "same",
            },
        ).status_code
        == 422
    )


def test_evidence_falls_back_to_reported_results_for_aggregate_studies(client: TestClient[Any]) -> None:
    dara = f.agent(client, name="daratumumab", targets=["CD38"])
    s = f.study(client, title="Aggregate")
    f.arm(client, s["id"], agent_ids=[dara["id"]])
    _result(
        client,
        s["id"],
        numerator=5,
        denominator=6,
        definition={"type": "response_rate", "categories": ["CR", "CRi", "CRh"]},
    )
    body = client.get(f"{API}/evidence/response-rates", params={"agent": "daratumumab"}).json()
    [row] = body["rows"]
    assert (row["source"], row["events"], row["total"]) == ("reported_result", 5, 6)
    assert row["provenance"][0]["location"] == "Table 1"
    incidence = client.get(f"{API}/evidence/adverse-event-incidence", params={"term": "Sepsis"}).json()
    assert incidence["rows"] == [] and incidence["pooled"] is None


def test_possible_duplicates_score_matching_fields(client: TestClient[Any]) -> None:
    first = f.study(client, start_date="2019", institution="Hospital A")
    later = f.study(client, start_date="2021", institution="Hospital A")
    a = f.patient(
        client,
        first["id"],
        subject_code="case",
        diagnosis="B-ALL",
        sex="male",
        age_years=26,
        diagnosis_subtype="pro-B",
        genetic_findings=["KMT2A-AFF1"],
    )
    b = f.patient(
        client,
        later["id"],
        subject_code="P7",
        diagnosis="B-ALL",
        sex="male",
        age_years=28,
        diagnosis_subtype="pro-B",
        genetic_findings=["KMT2A-AFF1", "TP53"],
    )
    f.patient(client, later["id"], subject_code="P8", diagnosis="B-ALL", sex="female", age_years=26)
    f.patient(client, later["id"], subject_code="P9", diagnosis="AML", sex="male", age_years=26)
    body = client.get(f"{API}/patients/possible-duplicates").json()
    [pair] = body["items"]
    assert {pair["patient_a_id"], pair["patient_b_id"]} == {a["id"], b["id"]}
    assert {m["field"] for m in pair["matched"]} == {
        "sex",
        "age",
        "diagnosis_subtype",
        "genetic_findings",
        "institution",
        "dates",
    }
    assert pair["score"] == pytest.approx(8 / 9, abs=1e-4) and pair["decision"] is None
    f.create(
        client, "patient-links", {"patient_a_id": a["id"], "patient_b_id": b["id"], "decision": "different"}
    )
    assert client.get(f"{API}/patients/possible-duplicates").json()["items"][0]["decision"] == "different"
    assert client.delete(f"{API}/patients/{a['id']}").status_code == 409
    assert client.delete(f"{API}/patients/{a['id']}", params={"cascade": "true"}).status_code == 204
    assert client.get(f"{API}/patient-links").json()["total"] == 0


def test_seed_reconciliation_surfaces_the_documents_inconsistencies(
    client: TestClient[Any], database_url: str
) -> None:
    load(database_url)
    s = study(client, "004_99c9fed070f33cc4.txt")
    body = client.get(f"{API}/studies/{s['id']}/reconciliation").json()
    inconsistent = {r["measure"] for r in body["results"] if r["verdict"] == "inconsistent"}
    for measure in [
        "CRS incidence, concurrent group",  # 5/8 printed as 62.6%
        "CRS incidence, concurrent vs sequential",  # p = 0.226, Fisher gives 0.266
        "Median age (Table 1)",  # 45 vs 52
        "Sex male/female (Table 1)",  # 7/5
        "Grade 3-4 neutropenia (abstract)",  # 92.3% vs 11/13
        "Febrile neutropenia (text)",  # 3 vs Table 2's 2
        "CR rate (discussion)",  # 90.9% vs 12/13
    ]:
        assert measure in inconsistent, measure
    assert "Median age (text)" not in inconsistent and "CRS any grade" not in inconsistent
    assert body["summary"]["inconsistent"] == len(inconsistent)
    # Table 1's "Hb (g/dL) 92 (63-142)": the unit is demonstrably wrong; the range is not Table 3's
    # pretreatment range at either end, so the median is not compared with it
    [hb] = [r for r in body["results"] if r["measure"] == "Median hemoglobin (Table 1)"]
    checks = {c["check"]: c for c in hb["checks"]}
    assert checks["unit"]["verdict"] == "inconsistent" and "fit g/L" in checks["unit"]["detail"]
    assert checks["patient_level"]["verdict"] == "not_computable"
    assert "differs at both ends" in checks["patient_level"]["detail"]
    # a median whose range agrees at one end is still compared (and flagged)
    assert "Median bone marrow blasts (Table 1)" in inconsistent
    cart = study(client, "001_eee766f12762b4c9.txt")
    verdicts = {
        r["measure"]: r["verdict"]
        for r in client.get(f"{API}/studies/{cart['id']}/reconciliation").json()["results"]
    }
    assert verdicts["CR or CRi 4 weeks after CAR-T-38 infusion (text)"] == "consistent"
    assert verdicts["Median overall survival"] == "not_computable"
    # '2 (50%)' in an N = 6 column: 2 of the 4 responders, the patients at risk of relapse
    assert verdicts["6-month cumulative recurrence"] == "consistent"
    [recurrence] = [
        r
        for r in client.get(f"{API}/studies/{cart['id']}/reconciliation").json()["results"]
        if r["measure"] == "6-month cumulative recurrence"
    ]
    [patient_level] = [c for c in recurrence["checks"] if c["check"] == "patient_level"]
    [percentage] = [c for c in recurrence["checks"] if c["check"] == "percentage"]
    assert percentage["verdict"] == "consistent" and "4 patients at risk" in percentage["detail"]
    # a cumulative incidence with death competing: patient 1's relapse has no day, and the
    # deaths (median OS 7.9 months) are reported only in aggregate
    assert patient_level["verdict"] == "not_computable"
    assert "relapse" in patient_level["detail"] and "undated" in patient_level["detail"]
    assert "only in aggregate" in patient_level["detail"]
    # "median CR or CRi time" read as the duration of CR: patient 1's undated relapse withholds it
    assert verdicts["Median CR or CRi time"] == "not_computable"


def test_leave_one_out_and_cumulative_views_follow_the_pooled_rows(client: TestClient[Any]) -> None:
    from service.analytics.pooling.meta import cumulative, leave_one_out, pool_proportions

    def pool(rows: list[dict[str, Any]]) -> Any:
        return pool_proportions([r["events"] for r in rows], [r["total"] for r in rows])

    layout = [("2019", 3, 10), ("2017", 8, 20), ("2021", 5, 9), (None, 2, 12)]
    for i, (year, responders, total) in enumerate(layout):
        s = f.study(
            client, title=f"S{i}", design="single_arm_trial", **({"start_date": f"{year}-03"} if year else {})
        )
        for j in range(total):
            p = f.patient(client, s["id"], subject_code=f"P{i}-{j}")
            f.response(client, p["id"], category="CR" if j < responders else "NR")
    body = client.get(f"{API}/evidence/response-rates").json()
    rows = body["rows"]
    expected = leave_one_out(rows, pool, lambda r: r["total"] > 0)
    assert [(v["study_title"], v["estimate"]) for v in body["leave_one_out"]] == [
        (r["study_title"], pytest.approx(e.random.estimate, abs=1e-12))
        for r, e in zip(rows, expected, strict=True)
    ]
    assert all(v["studies"] == 3 for v in body["leave_one_out"])
    # a study without a year: no cumulative view, said why
    assert body["cumulative"] == [] and "S3" in body["cumulative_not_computable"]
    dated = client.get(
        f"{API}/evidence/response-rates", params={"study_id": [r["study_id"] for r in rows[:3]]}
    ).json()
    order = sorted(dated["rows"], key=lambda r: r["year"])
    running = cumulative(order, pool, lambda r: r["total"] > 0)
    assert [v["study_title"] for v in dated["cumulative"]] == [r["study_title"] for r in order][1:]
    assert [v["estimate"] for v in dated["cumulative"]] == pytest.approx(
        [c.random.estimate for c in running[1:]], abs=1e-12
    )
    assert [v["year"] for v in dated["cumulative"]] == [2019, 2021]
