"""A real ClinicalTrials.gov record with posted results: NCT02296125 (FLAURA, osimertinib against
gefitinib or erlotinib in EGFR-mutated lung cancer), the API v2 answer for it reduced to the
modules these tests read — every field name, enumeration word and number as the API answered,
long prose clipped, other modules left out (so its second analysis names two groups of the China
cohort, OG002 and OG003, that the reduced record does not list). Not a leukemia: it is refused
unless asked for, and then imports with its sites, arms and posted results, and re-exports as it
came in."""

import copy
from typing import Any

from litestar.testing import TestClient

from tests.integration.test_ctgov_results import IMPORT, _imported, _record, _resolve
from tests.integration.test_exchange import _export
from tests.integration.test_seed import get_all

API = "/api/v1"
NCT = "NCT02296125"


def test_a_real_record_of_another_disease_is_refused_unless_asked_for(empty_target: TestClient[Any]) -> None:
    refused = empty_target.post(IMPORT, json=_record(NCT))
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "Non Small Cell Lung Cancer" in refused.json()["detail"]
    assert get_all(empty_target, "studies") == [] and get_all(empty_target, "agents") == []
    result = _imported(empty_target, _record(NCT), allow_non_leukemia="true")
    assert result["warnings"] == [
        "none of the record's conditions is a leukemia; imported as asked (allow_non_leukemia=true)"
    ]
    assert result["counts"]["sites"] == 4 and result["counts"]["arms"] == 2


def test_sites_arms_and_posted_results_of_a_real_record(empty_target: TestClient[Any]) -> None:
    record = _record(NCT)
    study_id = _imported(empty_target, copy.deepcopy(record), allow_non_leukemia="true")["study_id"]
    sites = get_all(empty_target, "sites", study_id=study_id)
    assert [(s["institution"], s["city"], s["country"]) for s in sites] == [
        ("Research Site", city, "United States") for city in ("Anaheim", "Santa Rosa", "West Hills", "Tampa")
    ]
    arms = get_all(empty_target, "arms", study_id=study_id)
    assert [a["label"] for a in arms] == ["AZD9291+ placebo", "Standard of Care + placebo AZD9291"]
    agents = {a["id"]: a["name"] for a in get_all(empty_target, "agents")}
    assert sorted(agents[i].casefold() for i in arms[0]["agent_ids"]) == [
        "azd9291 80 mg/40 mg + placebo",
        "placebo erlotinib 150/100mg",
    ]
    results = {
        r["provenance"][0]["location"]: r
        for r in get_all(empty_target, "reported-results", study_id=study_id)
    }
    measure = "/resultsSection/outcomeMeasuresModule/outcomeMeasures/0"
    osimertinib = results[f"{measure}/classes/0/categories/0/measurements/0"]
    soc = results[f"{measure}/classes/0/categories/0/measurements/1"]
    for row, population, expected in (
        (osimertinib, "Osimertinib 80 mg (Global Cohort)", (18.9, 15.2, 21.4, 279)),
        (soc, "SoC EGFR-TKI (Global Cohort)", (10.2, 9.6, 11.1, 277)),
    ):
        # "95% Confidence Interval" as the API writes the dispersion type: an interval, not a note
        assert (row["value"], row["ci_lower"], row["ci_upper"], row["denominator"]) == expected
        assert (row["ci_level"], row["unit"], row["population"]) == (0.95, "Months", population)
        assert row["measure"] == "Median Progression Free Survival (PFS) (Months)"
    ratio = results[f"{measure}/analyses/0"]
    assert (ratio["value"], ratio["ci_lower"], ratio["ci_upper"], ratio["ci_level"]) == (
        0.46,
        0.37,
        0.57,
        0.95,
    )
    assert ratio["population"] == "Osimertinib 80 mg (Global Cohort) vs SoC EGFR-TKI (Global Cohort)"
    assert ratio["p_value"] is None and "p value as posted: <0.0001" in ratio["notes"]
    china = results[f"{measure}/analyses/1"]
    assert (china["value"], china["ci_lower"], china["ci_upper"], china["p_value"]) == (
        0.56,
        0.37,
        0.85,
        0.0065,
    )
    assert china["population"] == "OG002 vs OG003"  # groups the record does not list: named by their ids
    assert len(results) == 4
    # Every provenance, of sites, arms and results, is a JSON pointer that resolves in the record.
    for item in [*sites, *arms, *results.values()]:
        [provenance] = item["provenance"]
        assert provenance["source_document"] == f"ClinicalTrials.gov {NCT}"
        assert _resolve(record, provenance["location"]) is not None, provenance["location"]


def test_a_real_record_re_exports_as_it_came_in_and_with_the_curators_changes(
    empty_target: TestClient[Any],
) -> None:
    record = _record(NCT)
    study_id = _imported(empty_target, copy.deepcopy(record), allow_non_leukemia="true")["study_id"]
    # Nothing lost (dates' types, masking, the sponsor's class, arm types, other names, age
    # groups, the participant flow, …), nothing invented, the spelling kept.
    assert _export(empty_target, study_id, "ctgov").json() == record
    study = empty_target.get(f"{API}/studies/{study_id}")
    changed = empty_target.patch(
        f"{API}/studies/{study_id}",
        json={"title": "FLAURA: osimertinib in EGFR-mutated NSCLC"},
        headers={"If-Match": study.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    arm = get_all(empty_target, "arms", study_id=study_id)[1]
    renamed = empty_target.patch(
        f"{API}/arms/{arm['id']}",
        json={"label": "Standard of care"},
        headers={"If-Match": empty_target.get(f"{API}/arms/{arm['id']}").headers["etag"]},
    )
    assert renamed.status_code == 200, renamed.text
    expected = copy.deepcopy(record)
    expected["protocolSection"]["identificationModule"]["briefTitle"] = (
        "FLAURA: osimertinib in EGFR-mutated NSCLC"
    )
    expected["protocolSection"]["armsInterventionsModule"]["armGroups"][1]["label"] = "Standard of care"
    exported = _export(empty_target, study_id, "ctgov").json()
    # the renamed arm is the registry's arm now: what the record said of it under its old label
    # (its type, its intervention names) is not carried over to another arm's identity
    expected["protocolSection"]["armsInterventionsModule"]["armGroups"][1] = {
        "label": "Standard of care",
        "description": record["protocolSection"]["armsInterventionsModule"]["armGroups"][1]["description"],
    }
    assert exported == expected


def test_a_real_record_without_results_imports_and_re_exports_as_it_came_in(
    empty_target: TestClient[Any],
) -> None:
    """NCT00072579 (sargramostim in chronic-phase CML), the API v2 answer whole: a leukemia, not
    acute (a warning), 15 sites, one biological intervention and no arm groups, no results."""
    record = _record("NCT00072579")
    result = _imported(empty_target, copy.deepcopy(record))
    assert [w for w in result["warnings"] if "not acute" in w], result["warnings"]
    assert result["counts"] == {
        "arms": 0,
        "sites": 15,
        "patients": 0,
        "treatments": 0,
        "adverse_events": 0,
        "outcomes": 0,
        "reported_results": 0,
    }
    study_id = result["study_id"]
    sites = get_all(empty_target, "sites", study_id=study_id)
    locations = record["protocolSection"]["contactsLocationsModule"]["locations"]
    assert [(s["institution"], s["city"], s["country"]) for s in sites] == [
        (loc["facility"], loc["city"], loc["country"]) for loc in locations
    ]
    study = empty_target.get(f"{API}/studies/{study_id}").json()
    assert study["registry"]["secondary_ids"] == ["CDR0000340983", "BRLX-02153", "NCI-7350"]
    assert study["registry"]["collaborators"] == ["National Cancer Institute (NCI)"]
    assert [m["term"] for m in study["registry"]["mesh_terms"]][:2] == ["Leukemia", "Leukemia, Myeloid"]
    [agent] = get_all(empty_target, "agents")
    assert agent["name"] == "sargramostim"
    # Every provenance is a JSON pointer that resolves in the record as received.
    for item in [study, agent, *sites]:
        for provenance in item["provenance"]:
            assert _resolve(record, provenance["location"]) is not None, provenance["location"]
    assert _export(empty_target, study_id, "ctgov").json() == record
