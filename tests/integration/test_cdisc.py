"""CDISC Dataset-JSON v1.1 exports (SDTM DM, AE, RS, DS; ADaM ADSL, ADTTE, ADAE, ADRS): every
dataset of constructed and seed studies validated against the official JSON schemas
(tests/fixtures/cdisc), and their content against the API's own analyses and records."""

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft201909Validator
from litestar.testing import TestClient

from tests import factories as f
from tests.integration.test_seed import get_all, load

API = "/api/v1"
SCHEMAS = Path(__file__).parents[1] / "fixtures" / "cdisc"
DATASET = Draft201909Validator(json.loads((SCHEMAS / "dataset.schema.json").read_text()))
NDJSON = json.loads((SCHEMAS / "dataset-ndjson-schema.json").read_text())
METADATA = Draft201909Validator({**NDJSON["$defs"]["DatasetMetadata"], "$defs": NDJSON["$defs"]})
NAMES = ["DM", "AE", "RS", "DS", "ADSL", "ADTTE", "ADAE", "ADRS"]


def _valid(client: TestClient[Any], study_id: str, name: str) -> dict[str, Any]:
    answer = client.get(f"{API}/studies/{study_id}/datasets/{name}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    errors = [e.message for e in DATASET.iter_errors(body)]
    assert errors == [], (name, errors[:3])
    assert body["records"] == len(body["rows"]) and all(len(r) == len(body["columns"]) for r in body["rows"])
    lines = client.get(f"{API}/studies/{study_id}/datasets/{name}/ndjson").text.splitlines()
    header = json.loads(lines[0])
    assert [e.message for e in METADATA.iter_errors(header)] == [], name
    assert header["records"] == len(lines) - 1 and [json.loads(line) for line in lines[1:]] == body["rows"]
    return body


def _records(body: dict[str, Any]) -> list[dict[str, Any]]:
    names = [c["name"] for c in body["columns"]]
    return [dict(zip(names, row, strict=True)) for row in body["rows"]]


def test_datasets_of_a_study_are_valid_dataset_json_and_say_what_the_api_says(
    client: TestClient[Any],
) -> None:
    study = f.study(client, registry_ids=["NCT00000001"])
    arms = [f.arm(client, study["id"], label=label) for label in ("Ven + aza", "Aza")]
    site = f.site(client, study["id"])
    dead = f.patient(
        client,
        study["id"],
        subject_code="P1",
        arm_id=arms[0]["id"],
        site_id=site["id"],
        sex="female",
        age_years=71,
    )
    f.response(client, dead["id"], study_day=28, category="CR", mrd_status="negative", mrd_method="flow")
    ae_code = f.adverse_event(client, dead["id"], term="Febrile neutropenia", grade=3, onset_day=9)[
        "meddra_code"
    ]
    f.event(client, dead["id"], event_type="death", study_day=200, cause="infection")
    alive = f.patient(
        client, study["id"], subject_code="P2", arm_id=arms[1]["id"], sex="male", age_years=64.5
    )
    f.response(client, alive["id"], study_day=28, category="NR")
    f.event(client, alive["id"], event_type="last_follow_up", study_day=300)
    undated = f.patient(client, study["id"], subject_code="P3", arm_id=arms[1]["id"])
    f.event(client, undated["id"], event_type="death", study_day=None, timing_text="died during follow-up")

    listing = client.get(f"{API}/studies/{study['id']}/datasets").json()
    assert [d["name"] for d in listing] == NAMES
    bodies = {name: _valid(client, study["id"], name) for name in NAMES}

    dm = _records(bodies["DM"])
    assert [(r["USUBJID"], r["SEX"], r["ARM"], r["SITEID"]) for r in dm] == [
        ("NCT00000001-P1", "F", "Ven + aza", "A1"),
        ("NCT00000001-P2", "M", "Aza", None),
        ("NCT00000001-P3", None, "Aza", None),
    ]
    # de-identified: no birth date, no name, anywhere in the datasets
    columns = {c["name"] for body in bodies.values() for c in body["columns"]}
    assert not columns & {"BRTHDTC", "BRTHDT", "SUBJNAME"}
    [ae] = _records(bodies["AE"])
    assert ae_code and (ae["AETOXGR"], ae["AEPTCD"], ae["AESTDY"], ae["AESEQ"]) == ("3", int(ae_code), 9, 1)
    rs = _records(bodies["RS"])
    assert {(r["USUBJID"][-2:], r["RSTESTCD"], r["RSSTRESC"]) for r in rs} == {
        ("P1", "OVRLRESP", "CR"),
        ("P1", "MRDSTS", "NEGATIVE"),
        ("P2", "OVRLRESP", "NR"),
    }
    ds = _records(bodies["DS"])
    assert {(r["USUBJID"][-2:], r["DSDECOD"], r["DSSTDY"]) for r in ds} == {
        ("P1", "DEATH", 200),
        ("P2", "LAST KNOWN ALIVE", 300),
        ("P3", "DEATH", None),
    }
    # ADTTE is exactly the time-to-event rows: the undated death is left out, never censored.
    adtte = _records(bodies["ADTTE"])
    for endpoint in ("OS", "EFS"):
        api = client.get(
            f"{API}/studies/{study['id']}/time-to-event",
            params={"endpoint": endpoint, "undated_events": "withhold"},
        ).json()
        mine = [r for r in adtte if r["PARAMCD"] == endpoint]
        assert sorted((r["USUBJID"][-2:], r["AVAL"], r["CNSR"]) for r in mine) == sorted(
            (row["subject_code"], row["time"], row["cnsr"]) for row in api["rows"]
        )
    os_rows = {r["USUBJID"][-2:]: r for r in adtte if r["PARAMCD"] == "OS"}
    assert "P3" not in os_rows
    assert (os_rows["P1"]["CNSR"], os_rows["P1"]["AVAL"], os_rows["P1"]["SRCDOM"]) == (0, 199.0, "DS")
    assert os_rows["P2"]["CNSR"] == 1 and os_rows["P2"]["EVNTDESC"] is None and os_rows["P2"]["CNSDTDSC"]
    adsl = _records(bodies["ADSL"])
    assert [r["TRT01P"] for r in adsl] == ["Ven + aza", "Aza", "Aza"]


def test_every_dataset_of_every_seed_study_is_valid(client: TestClient[Any], database_url: str) -> None:
    load(database_url)
    for study in get_all(client, "studies"):
        for name in NAMES:
            _valid(client, study["id"], name)


@pytest.mark.parametrize("path", ["XX", "dm", "ADTTE/csv"])
def test_an_unknown_dataset_is_a_clear_error(client: TestClient[Any], path: str) -> None:
    study = f.study(client)
    answer = client.get(f"{API}/studies/{study['id']}/datasets/{path}")
    assert answer.status_code in (400, 404) and answer.headers["content-type"].startswith(
        "application/problem+json"
    )


def test_a_study_that_does_not_exist_is_404(client: TestClient[Any]) -> None:
    answer = client.get(f"{API}/studies/00000000-0000-7000-8000-000000000000/datasets/DM")
    assert answer.status_code == 404
