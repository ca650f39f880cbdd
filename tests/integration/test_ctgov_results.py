"""A ClinicalTrials.gov record with posted results imports whole: every location with a facility
as a site, arms with their interventions, and every posted figure (outcome-measure values per
group, analyses, adverse events per group) as a reported result whose provenance is the JSON
pointer of the value in the record. A record of another disease is refused unless asked for, a
leukemia other than acute comes with a warning, and a re-export invents nothing the record lacks.

These fixtures are written in the shape of an API v2 record with results (tests/fixtures/ctgov), to
reach every branch; a real record (FLAURA, NCT02296125) is test_ctgov_real_record.py's."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.integration.test_exchange import _export
from tests.integration.test_seed import get_all

API = "/api/v1"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ctgov"
IMPORT = f"{API}/studies/import/clinicaltrials-gov"


def _record(name: str = "NCT09990002") -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _resolve(document: Any, pointer: str) -> Any:
    """RFC 6901."""
    node = document
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _imported(client: TestClient[Any], record: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = client.post(IMPORT, json=record, params=params)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_sites_arms_and_every_posted_figure_are_imported(empty_target: TestClient[Any]) -> None:
    record = _record()
    result = _imported(empty_target, record)
    assert result["warnings"] == ["location 2 names no facility: not a site (city Madrid)"]
    study_id = result["study_id"]
    sites = get_all(empty_target, "sites", study_id=study_id)
    assert [(s["code"], s["institution"], s["city"], s["country"]) for s in sites] == [
        ("S1", "University Hospital Example", "Lyon", "France"),
        ("S2", "Example Cancer Centre", "Toronto", "Canada"),
    ]
    study = empty_target.get(f"{API}/studies/{study_id}").json()
    assert study["registry"] == {
        "keywords": ["BCL-2", "elderly"],
        "mesh_terms": [{"term": "Leukemia, Myeloid, Acute", "id": "D015470"}],
        "secondary_ids": ["ECG-AML-0419", "2018-004411-27"],
        "collaborators": ["Example Pharma"],
        "outcome_measures": [
            {
                "type": "PRIMARY",
                "measure": "Overall Survival",
                "description": "Time from randomization to death from any cause.",
                "time_frame": "Up to 36 months",
            },
            {
                "type": "SECONDARY",
                "measure": "Composite Complete Remission Rate (CR + CRi)",
                "time_frame": "Up to 6 cycles",
                "description": None,
            },
            {
                "type": "SECONDARY",
                "measure": "Time to Response",
                "time_frame": "Up to 6 cycles",
                "description": None,
            },
        ],
    }
    arms = {a["label"]: a["id"] for a in get_all(empty_target, "arms", study_id=study_id)}
    venetoclax, placebo = arms["Venetoclax + Azacitidine"], arms["Placebo + Azacitidine"]
    results = get_all(empty_target, "reported-results", study_id=study_id)
    # 2 survival values + HR, 4 remission counts + OR, 1 time to response, 2 serious + 2 other AE rows
    assert len(results) == result["counts"]["reported_results"] == 13
    by_pointer = {r["provenance"][0]["location"]: r for r in results}
    measures = "/resultsSection/outcomeMeasuresModule/outcomeMeasures"
    survival = by_pointer[f"{measures}/0/classes/0/categories/0/measurements/0"]
    assert (survival["measure"], survival["arm_id"], survival["value"], survival["unit"]) == (
        "Overall Survival",
        venetoclax,
        14.7,
        "months",
    )
    assert (survival["ci_lower"], survival["ci_upper"], survival["ci_level"]) == (11.9, 18.7, 0.95)
    assert (survival["denominator"], survival["timepoint"]) == (80, "Up to 36 months")
    control = by_pointer[f"{measures}/0/classes/0/categories/0/measurements/1"]
    assert control["arm_id"] == placebo and control["value"] == 9.6 and control["ci_upper"] is None
    assert "7.4 to NA" in control["notes"] and "not estimable" in control["notes"]  # as posted
    ratio = by_pointer[f"{measures}/0/analyses/0"]
    assert (ratio["value"], ratio["ci_lower"], ratio["ci_upper"], ratio["test"]) == (
        0.66,
        0.52,
        0.85,
        "Log Rank",
    )
    assert ratio["p_value"] is None and "p value as posted: <0.001" in ratio["notes"]
    assert ratio["population"] == "Venetoclax + Azacitidine vs Placebo + Azacitidine"
    assert by_pointer[f"{measures}/1/analyses/0"]["p_value"] == 0.0008
    cri = by_pointer[f"{measures}/1/classes/0/categories/1/measurements/0"]
    assert (cri["measure"], cri["value"], cri["denominator"]) == (
        "Composite Complete Remission Rate (CR + CRi) — CRi",
        22,
        80,
    )
    responders = by_pointer[f"{measures}/2/classes/0/categories/0/measurements/0"]
    assert (
        responders["arm_id"] is None and responders["population"] == "Venetoclax + Azacitidine (responders)"
    )
    assert (responders["range_lower"], responders["range_upper"]) == (0.6, 9.9)
    neutropenia = by_pointer["/resultsSection/adverseEventsModule/seriousEvents/0/stats/0"]
    assert (neutropenia["numerator"], neutropenia["denominator"], neutropenia["arm_id"]) == (
        24,
        80,
        venetoclax,
    )
    assert neutropenia["measure"] == "Adverse event (serious): Febrile neutropenia"
    # Every pointer resolves in the record, to the value quoted.
    for item in results:
        [provenance] = item["provenance"]
        assert provenance["source_document"] == "ClinicalTrials.gov NCT09990002"
        node = _resolve(record, provenance["location"])
        if "measurements" in provenance["location"]:
            assert node["value"] == provenance["quote"]
        elif "/stats/" in provenance["location"]:
            assert provenance["quote"] == f"{node['numAffected']}/{node['numAtRisk']} affected"
        else:
            assert provenance["quote"] == f"{node['paramType']}: {node['paramValue']}"


def test_a_record_of_another_disease_is_refused_unless_asked_for(empty_target: TestClient[Any]) -> None:
    record = _record()
    record["protocolSection"]["conditionsModule"] = {"conditions": ["Non-Small Cell Lung Cancer"]}
    record["derivedSection"]["conditionBrowseModule"]["meshes"] = [{"term": "Carcinoma, Non-Small-Cell Lung"}]
    refused = empty_target.post(IMPORT, json=record)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "Non-Small Cell Lung Cancer" in refused.text and "allow_non_leukemia" in refused.text
    assert get_all(empty_target, "studies") == [] and get_all(empty_target, "agents") == []
    allowed = _imported(empty_target, record, allow_non_leukemia="true")
    assert any("none of the record's conditions is a leukemia" in w for w in allowed["warnings"])


@pytest.mark.parametrize(
    "conditions, mesh, warned",
    [
        (["Chronic Myeloid Leukemia"], "Leukemia, Myelogenous, Chronic, BCR-ABL Positive", True),
        (["AML"], "Leukemia, Myeloid, Acute", False),
        (["Cancer"], "Precursor Cell Lymphoblastic Leukemia-Lymphoma", False),  # MeSH alone tells it
    ],
)
def test_leukemias_other_than_acute_are_imported_with_a_warning(
    empty_target: TestClient[Any], conditions: list[str], mesh: str, warned: bool
) -> None:
    record = _record()
    record["protocolSection"]["conditionsModule"]["conditions"] = conditions
    record["protocolSection"]["conditionsModule"]["keywords"] = []
    record["derivedSection"]["conditionBrowseModule"]["meshes"] = [{"term": mesh}]
    warnings = [w for w in _imported(empty_target, record)["warnings"] if "not acute" in w]
    assert bool(warnings) is warned, warnings


def _leaves(node: Any, path: str = "") -> set[tuple[str, str]]:
    """(path with list indices as *, value in lower case) of every scalar."""
    if isinstance(node, dict):
        return {leaf for k, v in node.items() for leaf in _leaves(v, f"{path}/{k}")}
    if isinstance(node, list):
        return {leaf for v in node for leaf in _leaves(v, f"{path}/*")}
    return {(path, str(node).lower())}


@pytest.mark.parametrize("name", ["NCT09990001", "NCT09990002", "no allocation, no arms"])
def test_a_re_export_invents_nothing_the_record_lacks(empty_target: TestClient[Any], name: str) -> None:
    record = _record("NCT09990001" if name.startswith("no") else name)
    if name.startswith("no"):  # as older records: interventions but no arm groups, no allocation
        del record["protocolSection"]["designModule"]["designInfo"]["allocation"]
        del record["protocolSection"]["designModule"]["designInfo"]["interventionModel"]
        record["protocolSection"]["armsInterventionsModule"]["armGroups"] = []
        for intervention in record["protocolSection"]["armsInterventionsModule"]["interventions"]:
            intervention["armGroupLabels"] = []
    study_id = _imported(empty_target, copy.deepcopy(record))["study_id"]
    exported = _export(empty_target, study_id, "ctgov").json()
    kept = ("protocolSection", "derivedSection")
    invented = _leaves({k: exported[k] for k in kept if k in exported}) - _leaves(
        {k: record[k] for k in kept if k in record}
    )
    assert invented == set(), invented
    # and what the registry modules the service keeps said comes back
    for path in (
        "/protocolSection/conditionsModule/keywords/*",
        "/protocolSection/identificationModule/secondaryIdInfos/*/id",
        "/protocolSection/sponsorCollaboratorsModule/collaborators/*/name",
        "/protocolSection/outcomesModule/primaryOutcomes/*/measure",
        "/derivedSection/conditionBrowseModule/meshes/*/term",
    ):
        source = {v for p, v in _leaves({k: record.get(k) for k in kept}) if p == path}
        assert source <= {v for p, v in _leaves({k: exported.get(k) for k in kept}) if p == path}, path
