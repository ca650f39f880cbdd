"""Statistics endpoints on data created through the API and on the seed dataset."""

from typing import Any

import pytest
from litestar.testing import TestClient
from statsmodels.stats.proportion import proportion_confint

from service.analytics.estimands.groups import NO_ARM
from tests import factories as f
from tests.integration.test_seed import load, study

API = "/api/v1"


def _cohort(
    client: TestClient[Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Two arms: A has 4 patients (3 CR, one of them MRD+), B has 3 patients (1 CRi)."""
    s = f.study(client)
    a, b = f.arm(client, s["id"], label="A"), f.arm(client, s["id"], label="B")
    patients = []
    for i, (arm, category, mrd) in enumerate(
        [
            (a, "CR", "negative"),
            (a, "CR", "negative"),
            (a, "CR", "positive"),
            (a, "NR", None),
            (b, "CRi", "negative"),
            (b, "PR", None),
            (b, None, None),
        ]
    ):
        p = f.patient(client, s["id"], subject_code=f"P{i}", arm_id=arm["id"])
        patients.append(p)
        if category:
            f.response(client, p["id"], study_day=28 + i, category=category, mrd_status=mrd)
    return s, a, b, patients


def test_response_rate_all_patients_wilson(client: TestClient[Any]) -> None:
    s, *_ = _cohort(client)
    body = client.get(f"{API}/studies/{s['id']}/response-rates").json()
    [group] = body["groups"]
    assert (group["responders"], group["denominator"], group["evaluable"]) == (4, 7, 6)
    low, high = proportion_confint(4, 7, method="wilson")
    assert group["ci"]["lower"] == pytest.approx(low, abs=1e-12) and group["ci"]["upper"] == pytest.approx(
        high, abs=1e-12
    )
    assert "Wilson" in body["method"]["confidence_interval"]
    assert any("< 10" in w for w in body["warnings"])


def test_response_rate_options(client: TestClient[Any]) -> None:
    s, *_ = _cohort(client)
    url = f"{API}/studies/{s['id']}/response-rates"
    mrd = client.get(url, params={"mrd": "negative", "denominator": "evaluable"}).json()["groups"][0]
    # With mrd=negative, "evaluable" means an assessment whose MRD status is known (4 patients).
    assert (mrd["responders"], mrd["denominator"]) == (3, 4)
    cr_only = client.get(url, params={"categories": "CR"}).json()["groups"][0]
    assert cr_only["responders"] == 3
    early = client.get(url, params={"by_day": 29}).json()["groups"][0]
    assert (early["responders"], early["evaluable"]) == (2, 2)
    before_any = client.get(url, params={"by_day": -5}).json()["groups"][0]
    assert (before_any["responders"], before_any["rate"]) == (0, 0.0)
    cp = client.get(url, params={"ci": "clopper-pearson", "conf_level": 0.9}).json()["groups"][0]["ci"]
    low, high = proportion_confint(4, 7, alpha=0.1, method="beta")
    assert (cp["lower"], cp["upper"]) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert client.get(url, params={"categories": "CR,XX"}).status_code == 400
    assert client.get(url, params={"conf_level": 1.5}).status_code == 400


def test_response_rate_by_arm_fisher(client: TestClient[Any]) -> None:
    s, _a, _b, _ = _cohort(client)
    body = client.get(f"{API}/studies/{s['id']}/response-rates", params={"group_by": "arm"}).json()
    assert [(g["group"]["label"], g["responders"], g["denominator"]) for g in body["groups"]] == [
        ("A", 3, 4),
        ("B", 1, 3),
    ]
    from scipy.stats import fisher_exact

    reference = fisher_exact([[1, 2], [3, 1]])  # B (second) against A (first, the reference)
    assert body["comparison"]["p_value"] == pytest.approx(float(reference.pvalue), abs=1e-12)
    assert body["comparison"]["odds_ratio"] == pytest.approx(float(reference.statistic))
    assert body["comparison"]["risk_difference"] == pytest.approx(1 / 3 - 3 / 4)
    empty_arm = f.arm(client, s["id"], label="C")
    with_empty = client.get(f"{API}/studies/{s['id']}/response-rates", params={"group_by": "arm"}).json()
    assert with_empty["comparison"]["test"].startswith("Fisher")  # groups without patients are not compared
    assert any("no patients" in w for w in with_empty["warnings"])
    f.patient(client, s["id"], subject_code="C1", arm_id=empty_arm["id"])
    three = client.get(f"{API}/studies/{s['id']}/response-rates", params={"group_by": "arm"}).json()
    from scipy.stats import chi2_contingency

    reference = chi2_contingency([[3, 1], [1, 2], [0, 1]], correction=False)
    assert three["comparison"]["test"] == "Pearson chi-square"
    assert three["comparison"]["statistic"] == pytest.approx(float(reference.statistic))
    assert three["comparison"]["df"] == 2
    assert float(reference.expected_freq.min()) < 5
    assert any("expected cell count is below 5" in w for w in three["warnings"])


def test_uncertain_category_counts_only_when_all_candidates_qualify(client: TestClient[Any]) -> None:
    s = f.study(client)
    p = f.patient(client, s["id"])
    f.response(client, p["id"], category=None, possible_categories=["CR", "CRi"])
    url = f"{API}/studies/{s['id']}/response-rates"
    assert client.get(url).json()["groups"][0]["responders"] == 1
    assert client.get(url, params={"categories": "CR"}).json()["groups"][0]["responders"] == 0


def test_adverse_event_incidence_worst_grade_per_patient(client: TestClient[Any]) -> None:
    s, _a, _b, patients = _cohort(client)
    f.adverse_event(client, patients[0]["id"], term="Neutropenia", grade=2)
    f.adverse_event(client, patients[0]["id"], term="Neutropenia", grade=4)
    f.adverse_event(client, patients[1]["id"], term="Neutropenia", grade=3)
    f.adverse_event(client, patients[4]["id"], term="Headache", grade=None, grade_text="I/II")
    body = client.get(f"{API}/studies/{s['id']}/adverse-event-incidence").json()
    rows = {r["term"]: r["groups"][0] for r in body["rows"]}
    assert [r["term"] for r in body["rows"]] == ["Neutropenia", "Headache"]
    neutropenia = rows["Neutropenia"]
    assert (neutropenia["any_grade"]["n"], neutropenia["any_grade"]["N"], neutropenia["severe"]["n"]) == (
        2,
        7,
        2,
    )
    assert neutropenia["worst_grade"]["4"]["n"] == 1 and neutropenia["worst_grade"]["3"]["n"] == 1
    assert neutropenia["worst_grade"]["2"]["n"] == 0
    assert rows["Headache"]["worst_grade"]["unknown"]["n"] == 1 and rows["Headache"]["severe"]["n"] == 0
    by_arm = client.get(
        f"{API}/studies/{s['id']}/adverse-event-incidence", params={"group_by": "arm", "severe_grade": 4}
    ).json()
    row = next(r for r in by_arm["rows"] if r["term"] == "Neutropenia")
    assert [c["any_grade"]["n"] for c in row["groups"]] == [2, 0] and [
        c["severe"]["n"] for c in row["groups"]
    ] == [1, 0]
    assert row["fisher_p"] == pytest.approx(0.4285714285714286)
    filtered = client.get(
        f"{API}/studies/{s['id']}/adverse-event-incidence", params={"term": "headache"}
    ).json()
    assert [r["term"] for r in filtered["rows"]] == ["Headache"]


def test_survival_os_and_rfs_with_time_to_event_rows(client: TestClient[Any]) -> None:
    s = f.study(client)
    a, b = f.arm(client, s["id"], label="A"), f.arm(client, s["id"], label="B")
    plan = [(a, 11, True), (a, 31, False), (a, 61, True), (b, 21, True), (b, 41, True), (b, 91, False)]
    for i, (arm, day, died) in enumerate(plan):
        p = f.patient(client, s["id"], subject_code=f"S{i}", arm_id=arm["id"])
        f.treatment(client, p["id"], start_day=1, end_day=5)
        f.response(client, p["id"], study_day=6, category="CR")
        f.event(client, p["id"], study_day=day, event_type="death" if died else "last_follow_up")
    rows = client.get(f"{API}/studies/{s['id']}/time-to-event", params={"group_by": "arm"}).json()["rows"]
    assert [(r["subject_code"], r["time"], r["cnsr"]) for r in rows] == [
        ("S0", 10, 0),
        ("S1", 30, 1),
        ("S2", 60, 0),
        ("S3", 20, 0),
        ("S4", 40, 0),
        ("S5", 90, 1),
    ]
    body = client.get(
        f"{API}/studies/{s['id']}/survival", params={"group_by": "arm", "times": "30,365"}
    ).json()
    first = body["groups"][0]
    assert [(p["time"], p["n_risk"], p["n_event"], p["n_censor"]) for p in first["curve"]] == [
        (10, 3, 1, 0),
        (30, 2, 0, 1),
        (60, 1, 1, 0),
    ]
    assert first["curve"][0]["survival"] == pytest.approx(2 / 3)
    assert (
        first["landmarks"][0]["survival"] == pytest.approx(2 / 3)
        and first["landmarks"][1]["survival"] is None
    )
    assert first["median"]["time"] == 60.0
    assert body["log_rank"]["df"] == 1 and 0 <= body["log_rank"]["p_value"] <= 1
    months = client.get(f"{API}/studies/{s['id']}/survival", params={"time_unit": "months"}).json()
    assert months["groups"][0]["curve"][0]["time"] == pytest.approx(10 / 30.4375)
    rfs = client.get(f"{API}/studies/{s['id']}/time-to-event", params={"endpoint": "RFS"}).json()["rows"]
    assert (rfs[0]["origin_day"], rfs[0]["end_day"], rfs[0]["time"]) == (6, 11, 5)


def test_rfs_leaves_out_patients_never_in_remission(client: TestClient[Any]) -> None:
    s = f.study(client)
    responder, other = (
        f.patient(client, s["id"], subject_code="R"),
        f.patient(client, s["id"], subject_code="N"),
    )
    f.response(client, responder["id"], study_day=30, category="CRi")
    f.event(client, responder["id"], study_day=10, event_type="relapse")
    f.event(client, responder["id"], study_day=130, event_type="relapse")
    f.response(client, other["id"], study_day=30, category="NR")
    body = client.get(f"{API}/studies/{s['id']}/time-to-event", params={"endpoint": "RFS"}).json()
    assert [(r["subject_code"], r["time"], r["event_or_censoring"]) for r in body["rows"]] == [
        ("R", 100, "relapse")
    ]
    assert [(e["subject_code"], e["reason"]) for e in body["excluded"]] == [
        (
            "N",
            "never reached the endpoint's remission (CR/CRi/CRh; CR/CRi for CRD) on an assessment of the study treatment",
        )
    ]


def test_edge_cases_answer_cleanly(client: TestClient[Any]) -> None:
    empty = f.study(client)
    for path in ("response-rates", "adverse-event-incidence", "survival", "time-to-event"):
        response = client.get(f"{API}/studies/{empty['id']}/{path}")
        assert response.status_code == 200, path
    survival = client.get(f"{API}/studies/{empty['id']}/survival").json()
    assert survival["groups"][0]["n"] == 0 and survival["groups"][0]["median"]["reached"] is False
    rates = client.get(f"{API}/studies/{empty['id']}/response-rates").json()
    assert rates["groups"][0]["ci"] is None and rates["groups"][0]["rate"] is None
    missing = "0190a5b0-0000-7000-8000-000000000000"
    assert client.get(f"{API}/studies/{missing}/survival").status_code == 404
    assert client.get(f"{API}/studies/{empty['id']}/survival", params={"times": "a,b"}).status_code == 400


@pytest.mark.parametrize(
    "image_format, media_type, magic", [("svg", "image/svg+xml", b"<svg"), ("png", "image/png", b"\x89PNG")]
)
def test_plots_render(client: TestClient[Any], image_format: str, media_type: str, magic: bytes) -> None:
    """SVG at the plot's path, PNG at the path with `.png`: one media type per operation; `format=`
    naming the other format redirects (307) there with the rest of the query kept."""
    s, *_ = _cohort(client)
    for path in ("survival/plot", "swimmer-plot"):
        params = {"group_by": "arm"} if path == "survival/plot" else {}
        url = f"{API}/studies/{s['id']}/{path}" + (".png" if image_format == "png" else "")
        response = client.get(url, params=params)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        assert magic in response.content[:200]
        assert b'href="http' not in response.content  # nothing fetched from elsewhere
        other = "svg" if image_format == "png" else "png"
        moved = client.get(url, params={**params, "format": other}, follow_redirects=False)
        target = url.removesuffix(".png") if image_format == "png" else f"{url}.png"
        assert moved.status_code == 307
        assert moved.headers["location"] == target + ("?group_by=arm" if params else "")
        same = client.get(url, params={**params, "format": image_format})
        assert same.status_code == 200 and same.content == response.content


def test_seed_study_004_figures(client: TestClient[Any], database_url: str) -> None:
    load(database_url)
    s = study(client, "004_99c9fed070f33cc4.txt")
    body = client.get(f"{API}/studies/{s['id']}/response-rates", params={"ci": "agresti-coull"}).json()
    group = body["groups"][0]
    # P02 reached CR only after salvage Hyper-CVAD: not a response to the study treatment.
    assert (group["responders"], group["denominator"]) == (12, 13)
    mrd = client.get(
        f"{API}/studies/{s['id']}/response-rates",
        params={"mrd": "negative", "by_day": 21, "categories": "CR,CRi,CRh"},
    ).json()
    assert mrd["groups"][0]["responders"] == 0  # no category is printed at day 14-21, only MRD
    incidence = client.get(f"{API}/studies/{s['id']}/adverse-event-incidence").json()
    crs = next(r for r in incidence["rows"] if r["term"] == "Cytokine release syndrome")["groups"][0]
    assert (crs["any_grade"]["n"], crs["any_grade"]["N"], crs["severe"]["n"]) == (6, 13, 1)
    neutropenia = next(r for r in incidence["rows"] if r["term"] == "Neutrophil count decreased")["groups"][0]
    assert (neutropenia["any_grade"]["n"], neutropenia["severe"]["n"]) == (13, 11)


def test_timepoint_keeps_only_assessments_with_that_label(client: TestClient[Any]) -> None:
    s = f.study(client)
    early, late = f.patient(client, s["id"], subject_code="E"), f.patient(client, s["id"], subject_code="L")
    f.response(client, early["id"], category="CR", timepoint_label="prior to cycle 2")
    f.response(client, late["id"], category="NR", timepoint_label="prior to cycle 2")
    f.response(client, late["id"], category="CR", timepoint_label="after salvage")
    url = f"{API}/studies/{s['id']}/response-rates"
    assert client.get(url).json()["groups"][0]["responders"] == 2
    labelled = client.get(url, params={"timepoint": "prior to cycle 2"}).json()
    assert labelled["groups"][0]["responders"] == 1 and labelled["timepoint"] == "prior to cycle 2"
    assert "labelled 'prior to cycle 2'" in labelled["method"]["window"]


def test_patients_without_an_arm_are_left_out_of_arm_comparisons_never_a_group(
    client: TestClient[Any],
) -> None:
    s, a, b, _ = _cohort(client)
    loose = f.patient(client, s["id"], subject_code="loose")
    f.response(client, loose["id"], study_day=28, category="CR")
    f.event(client, loose["id"], event_type="death", study_day=40)
    f.adverse_event(client, loose["id"], term="Anemia", grade=3)
    arms = {str(a["id"]), str(b["id"])}
    by_arm = {"group_by": "arm"}
    rates = client.get(f"{API}/studies/{s['id']}/response-rates", params=by_arm).json()
    assert {g["group"]["key"] for g in rates["groups"]} == arms
    assert rates["comparison"]["test"].startswith("Fisher")  # still two groups
    assert rates["excluded_by_reason"] == {NO_ARM: 1}
    assert any("(loose)" in w for w in rates["warnings"])
    incidence = client.get(f"{API}/studies/{s['id']}/adverse-event-incidence", params=by_arm).json()
    assert set(incidence["patients"]) == arms and incidence["excluded_by_reason"] == {NO_ARM: 1}
    assert any("(loose)" in w for w in incidence["warnings"])
    for path in ("survival", "cumulative-incidence"):
        body = client.get(f"{API}/studies/{s['id']}/{path}", params=by_arm).json()
        assert {g["group"]["key"] for g in body["groups"]} == arms, path
        assert body["excluded_by_reason"][NO_ARM] == 1, path
    rows = client.get(f"{API}/studies/{s['id']}/time-to-event", params=by_arm).json()
    assert [(e["subject_code"], e["group_key"]) for e in rows["excluded"] if e["reason"] == NO_ARM] == [
        ("loose", None)
    ]
    # the whole study as one group keeps them
    whole = client.get(f"{API}/studies/{s['id']}/response-rates").json()
    assert whole["groups"][0]["patients"] == 8 and whole["excluded_by_reason"] == {}
