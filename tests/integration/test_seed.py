"""The curated seed dataset: what each document loads, spot facts read through the API,
idempotency, all-or-nothing loading of a bad file, and provenance on every record."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import TestClient

from service.db.session import create_engine, session_factory
from service.seed.loader import DATA_DIR, SeedError, document_files, load_files
from service.settings import Settings

API = "/api/v1"
COLLECTIONS = ("studies", "arms", "patients", "treatments", "adverse-events", "outcomes", "reported-results")
EXPECTED = {  # studies, arms, patients, treatments, adverse events, outcomes, reported results
    "000_e26ba34dc317a2d3.txt": (1, 1, 1, 5, 7, 12, 0),
    "001_eee766f12762b4c9.txt": (1, 1, 6, 25, 12, 9, 47),
    "002_7c568f0c2bc5759f.txt": (1, 1, 1, 11, 1, 19, 0),
    "003_5211f19740d87809.txt": (1, 1, 0, 0, 0, 0, 0),
    "004_99c9fed070f33cc4.txt": (1, 2, 13, 27, 54, 77, 71),
}


def load(database_url: str, paths: list[Path] | None = None) -> list[str]:
    async def run() -> list[str]:
        engine = create_engine(Settings(database_url=database_url))
        try:
            return await load_files(session_factory(engine), paths if paths is not None else document_files())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def get_all(client: TestClient[Any], collection: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.get(f"{API}/{collection}", params={**params, "limit": 500, "offset": len(items)}).json()
        items += page["items"]
        if len(items) >= page["total"]:
            return items


@pytest.fixture
def seeded(client: TestClient[Any], database_url: str) -> TestClient[Any]:
    load(database_url)
    return client


def study(client: TestClient[Any], document: str) -> dict[str, Any]:
    [found] = [s for s in get_all(client, "studies") if s["source_document"] == document]
    return found


def test_each_document_loads_what_it_holds(seeded: TestClient[Any]) -> None:
    for document, expected in EXPECTED.items():
        s = study(seeded, document)
        patients = get_all(seeded, "patients", study_id=s["id"])
        counts = (
            1,
            len(get_all(seeded, "arms", study_id=s["id"])),
            len(patients),
            len(get_all(seeded, "treatments", study_id=s["id"])),
            len(get_all(seeded, "adverse-events", study_id=s["id"])),
            len(get_all(seeded, "outcomes", study_id=s["id"])),
            len(get_all(seeded, "reported-results", study_id=s["id"])),
        )
        assert counts == expected, document


def test_case_report_000_spot_facts(seeded: TestClient[Any]) -> None:
    s = study(seeded, "000_e26ba34dc317a2d3.txt")
    [patient] = get_all(seeded, "patients", study_id=s["id"])
    assert (patient["age_years"], patient["sex"], patient["diagnosis"], patient["diagnosis_subtype"]) == (
        60,
        "female",
        "T-ALL",
        "non-ETP",
    )
    assert patient["disease_status"] == "cr_mrd_positive"
    [day32] = [o for o in get_all(seeded, "outcomes", patient_id=patient["id"]) if o.get("study_day") == 32]
    assert (day32["category"], day32["mrd_status"], day32["markers"][0]["percent_positive"]) == (
        "CRi",
        "negative",
        0.0,
    )
    consolidation = get_all(seeded, "treatments", patient_id=patient["id"], phase="consolidation")[0]
    assert consolidation["regimen"] == "Dara-VA-HAA" and consolidation["start_date"] == "2024-04"
    headache = get_all(seeded, "adverse-events", patient_id=patient["id"], term="Headache")[0]
    assert headache["grade"] is None and headache["grade_text"] == "I/II"


def test_cart_cohort_001_spot_facts(seeded: TestClient[Any]) -> None:
    s = study(seeded, "001_eee766f12762b4c9.txt")
    assert s["registry_ids"] == ["NCT04351022"]
    patients = {p["subject_code"]: p for p in get_all(seeded, "patients", study_id=s["id"])}
    assert sorted(patients) == ["1", "2", "3", "4", "5", "6"]
    relapses = get_all(seeded, "outcomes", patient_id=patients["4"]["id"], event_type="relapse")
    assert [r["study_day"] for r in relapses] == [118]
    week4 = [
        o for o in get_all(seeded, "outcomes", study_id=s["id"], kind="response") if o["study_day"] == 29
    ]
    assert sum(o["possible_categories"] == ["CR", "CRi"] for o in week4) == 4
    assert [o["category"] for o in week4 if o["patient_id"] == patients["3"]["id"]] == ["NR"]
    grade3 = [
        r
        for r in get_all(seeded, "reported-results", study_id=s["id"])
        if r["measure"].startswith("CRS grade 3")
    ]
    assert grade3[0]["numerator"] == 1 and "hepatotoxicity" in grade3[0]["notes"]


def test_case_report_002_spot_facts(seeded: TestClient[Any]) -> None:
    s = study(seeded, "002_7c568f0c2bc5759f.txt")
    [patient] = get_all(seeded, "patients", study_id=s["id"])
    assert "KMT2A-AFF1" in patient["genetic_findings"]
    assert {
        "marker": "CD19",
        "percent_positive": None,
        "status": "positive",
        "sample": "bone_marrow",
    } in patient["markers"]
    outcomes = get_all(seeded, "outcomes", patient_id=patient["id"])
    day39 = [o for o in outcomes if o.get("study_day") == 39 and o.get("mrd_target") == "KMT2A-AFF1 / ABL"]
    assert day39[0]["mrd_level"] == 0.11 and day39[0]["mrd_method"] == "qPCR"
    [relapse] = [o for o in outcomes if o.get("study_day") == 826 and o["kind"] == "response"]
    assert {
        "marker": "CD19",
        "percent_positive": None,
        "status": "negative",
        "sample": "bone_marrow",
    } in relapse["markers"]
    dara = get_all(seeded, "treatments", patient_id=patient["id"], agent="daratumumab")
    assert [t["regimen"] for t in dara] == ["daratumumab + venetoclax + cyclophosphamide + clofarabine"]


def test_registry_entry_003_has_no_patients(seeded: TestClient[Any]) -> None:
    s = study(seeded, "003_5211f19740d87809.txt")
    assert (s["overall_status"], s["phases"], s["end_date"]) == (
        "NOT_YET_RECRUITING",
        ["PHASE2"],
        "2028-09-01",
    )
    assert s["sponsor"] == "Institute of Hematology & Blood Diseases Hospital, China"
    assert get_all(seeded, "patients", study_id=s["id"]) == []
    [arm] = get_all(seeded, "arms", study_id=s["id"])
    [agent] = get_all(seeded, "agents", name="daratumumab")
    assert arm["agent_ids"] == [agent["id"]] and agent["targets"] == ["CD38"]
    assert s["id"] in [x["id"] for x in get_all(seeded, "studies", agent="daratumumab")]


def test_series_004_spot_facts(seeded: TestClient[Any]) -> None:
    s = study(seeded, "004_99c9fed070f33cc4.txt")
    patients = get_all(seeded, "patients", study_id=s["id"])
    assert len(patients) == 13 and sum(p["sex"] == "male" for p in patients) == 8
    arms = {a["label"]: a for a in get_all(seeded, "arms", study_id=s["id"])}
    sequential = arms["Venetoclax-Blinatumomab Sequential Group"]["id"]
    assert len(get_all(seeded, "patients", arm_id=sequential)) == 5
    crs = get_all(seeded, "adverse-events", study_id=s["id"], term="Cytokine release syndrome")
    assert len({e["patient_id"] for e in crs}) == 6 and sorted(e["grade"] for e in crs) == [1, 1, 1, 1, 2, 3]
    icans = get_all(
        seeded,
        "adverse-events",
        study_id=s["id"],
        term="Immune effector cell-associated neurotoxicity syndrome",
    )
    by_id = {p["id"]: p["subject_code"] for p in patients}
    assert [(by_id[e["patient_id"]], e["grade"]) for e in icans] == [("P10", 2)]
    [comparison] = [
        r for r in get_all(seeded, "reported-results", study_id=s["id"]) if r["p_value"] is not None
    ]
    assert comparison["p_value"] == 0.226 and "0.266" in comparison["notes"]


def test_loading_twice_changes_nothing(seeded: TestClient[Any], database_url: str) -> None:
    before = {c: len(get_all(seeded, c)) for c in COLLECTIONS}
    report = load(database_url)
    assert all("already loaded" in line for line in report[1:])
    assert {c: len(get_all(seeded, c)) for c in COLLECTIONS} == before


def test_a_bad_record_rejects_its_whole_document(
    client: TestClient[Any], database_url: str, tmp_path: Path
) -> None:
    data = yaml.safe_load((DATA_DIR / "004_99c9fed070f33cc4.yaml").read_text())
    data["patients"][3]["outcomes"][0]["study_day"] = 0
    bad = tmp_path / "004_bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(SeedError) as error:
        load(database_url, [bad])
    assert "004_bad.yaml" in str(error.value) and "/patients/3/outcomes/0" in str(error.value)
    assert "study_day" in str(error.value)
    assert get_all(client, "studies") == [] and get_all(client, "patients") == []


def test_a_record_without_provenance_is_refused(
    client: TestClient[Any], database_url: str, tmp_path: Path
) -> None:
    data = yaml.safe_load((DATA_DIR / "003_5211f19740d87809.yaml").read_text())
    del data["arms"][0]["provenance"]
    bad = tmp_path / "003_bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(
        SeedError, match=r"003_bad.yaml: /arms/0/provenance: every curated record needs provenance"
    ):
        load(database_url, [bad])
    assert get_all(client, "studies") == []


def test_every_record_carries_provenance(seeded: TestClient[Any]) -> None:
    for collection in (*COLLECTIONS, "agents"):
        for record in get_all(seeded, collection):
            assert record["provenance"], (collection, record["id"])
            for entry in record["provenance"]:
                assert entry["source_document"] and entry["location"] and entry["quote"], (
                    collection,
                    record["id"],
                )
