"""Analyses on a data cut and its release package: every analysis, evidence, reconciliation, plot and export operation
takes `data_cut=<id>` and answers as the live service answered when the cut was taken — only
the data-version fields differ —, byte for byte the same on every request (also from another
process that builds the cut's database afresh), however the live data changed since; without
`data_cut` the same requests see the changes. The operations are read from the contract, so an
operation that gains the parameter is covered without editing this test. The analyses run on a
cut go into its release package, an RO-Crate checked with the maintained RO-Crate libraries
(rocrate reads it, roc-validator validates it against the RO-Crate 1.3 profile)."""

import hashlib
import importlib.resources
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters
import urllib3
from litestar.testing import TestClient
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.plugins.sparql.processor import SPARQLProcessor
from rdflib.plugins.sparql.sparql import Query
from rocrate.rocrate import ROCrate
from rocrate_validator import models, services

from service.app import create_app
from service.settings import Settings
from tests import factories as f
from tests.conftest import RegistryTestClient
from tests.databases import fresh_database, issue_token
from tests.integration.test_seed import load

API = "/api/v1"
CONTRACT = Path(__file__).parents[2] / "openapi" / "openapi.json"
# Values for the parameters some operations require (the rest take their defaults).
REQUIRED = {
    "covariates": "age_years",
    "term": "Neutropenia",
}
DEPEND_ON_THE_CHANGES = {
    "getSurvival",
    "getSurvivalPlot",
    "getSurvivalPlotPng",
    "getResponseRates",
    "getAdverseEventIncidence",
    "getTimeToEvent",
    "getCumulativeIncidence",
    "getSwimmerPlot",
    "getReconciliation",
    "exportStudy",
    "exportStudyCsv",
    "exportStudyFhir",
    "exportStudyFhirNdjson",
    "getStudyDataset",
    "getStudyDatasetNdjson",
}
# Time stamps an export writes: on a cut, the cut's time; live, the time of the request.
STAMPS = ("exported_at", "datasetJSONCreationDateTime")


def _operations() -> list[tuple[str, str, dict[str, str]]]:
    """(operationId, path template, required query parameters) of each operation taking data_cut."""
    document = json.loads(CONTRACT.read_text())
    found = []
    for path, operations in document["paths"].items():
        for operation in operations.values():
            parameters = operation.get("parameters", [])
            if any(p["name"] == "data_cut" and p["in"] == "query" for p in parameters):
                required = {
                    p["name"]: REQUIRED[p["name"]]
                    for p in parameters
                    if p["in"] == "query" and p.get("required")
                }
                found.append((operation["operationId"], path, required))
    return sorted(found)


OPERATIONS = _operations()


def _client(url: str, name: str, role: str | None = "admin", **token: Any) -> RegistryTestClient:
    client = RegistryTestClient(create_app(Settings(database_url=url, rate_limit_per_minute=0)))
    client.headers["Authorization"] = f"Bearer {issue_token(url, name, role, **token)}"
    return client


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[tuple[str, TestClient[Any]]]:
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    with fresh_database(backend, tmp_path_factory.mktemp("cut-analyses")) as url:
        load(url)
        with _client(url, f"cut-admin-{uuid.uuid4().hex[:6]}") as client:
            yield url, client


def _largest_study(client: TestClient[Any]) -> str:
    studies = client.get(f"{API}/studies").json()["items"]
    sizes = {
        s["id"]: client.get(f"{API}/patients", params={"study_id": s["id"]}).json()["total"] for s in studies
    }
    return max(sizes, key=lambda s: sizes[s])


def _ask(client: TestClient[Any], study_id: str, cut_id: str | None) -> dict[str, Any]:
    answers = {}
    for operation, template, required in OPERATIONS:
        path = template.replace("{study_id}", study_id).replace("{id}", study_id).replace("{name}", "ADTTE")
        params: dict[str, str] = {**required, **({"data_cut": cut_id} if cut_id else {})}
        answers[operation] = client.get(path, params=params)
    return answers


def _comparable(response: Any, cut_id: str = "") -> Any:
    """The answer without what says when and on which data it was made (the links of a list of
    datasets on a cut keep to the cut)."""
    media_type = response.headers.get("content-type", "")
    if media_type.startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    if "ndjson" in media_type:
        return [_without_stamps(json.loads(line)) for line in response.text.splitlines() if line]
    if "json" in media_type:
        return _without_stamps(json.loads(response.text.replace(f"?data_cut={cut_id}", "")))
    return response.content


def _without_stamps(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in (*STAMPS, "data_version")}
    return body


def _change_the_live_data(client: TestClient[Any], study_id: str) -> None:
    """A correction, deletions and a new patient: every kind of answer changes."""
    patients = client.get(f"{API}/patients", params={"study_id": study_id, "limit": 100}).json()["items"]
    responses = [
        o
        for p in patients
        for o in client.get(f"{API}/outcomes", params={"patient_id": p["id"]}).json()["items"]
        if o["kind"] == "response"
    ]
    assert responses, "the seed study has response assessments"
    category = "NR" if responses[0]["category"] == "CR" else "CR"
    corrected = client.patch(f"{API}/outcomes/{responses[0]['id']}", json={"category": category})
    assert corrected.status_code == 200, corrected.text
    other = next(p for p in patients if p["id"] != responses[0]["patient_id"])
    deleted = client.delete(f"{API}/patients/{other['id']}", params={"cascade": "true"})
    assert deleted.status_code == 204, deleted.text
    # The figures other studies published, which the evidence pools, corrected too.
    reported = client.get(f"{API}/reported-results", params={"limit": 200}).json()["items"]
    assert reported, "the seed dataset has reported results"
    for result in reported:
        assert client.delete(f"{API}/reported-results/{result['id']}").status_code == 204
    added = f.patient(client, study_id, subject_code=f"CUT-NEW-{uuid.uuid4().hex[:4]}")
    f.event(client, added["id"], event_type="death", study_day=12)
    f.response(client, added["id"], study_day=28, category="CR")
    f.adverse_event(client, added["id"], term="Neutropenia", grade=4)


def test_every_analysis_on_a_cut_answers_as_the_registry_did_at_the_cut(
    seeded: tuple[str, TestClient[Any]],
) -> None:
    url, client = seeded
    assert len(OPERATIONS) >= 30, [o for o, _, _ in OPERATIONS]
    study_id = _largest_study(client)
    cut = client.post(f"{API}/data-cuts", json={"label": "manuscript v1"}).json()
    at_cut = _ask(client, study_id, None)
    assert {o: r.status_code for o, r in at_cut.items()} == {o: 200 for o in at_cut}, {
        o: r.text[:200] for o, r in at_cut.items() if r.status_code != 200
    }

    _change_the_live_data(client, study_id)

    on_cut = _ask(client, study_id, cut["id"])
    live = _ask(client, study_id, None)
    for operation, answer in on_cut.items():
        assert answer.status_code == 200, (operation, answer.text[:300])
        assert _comparable(answer, cut["id"]) == _comparable(at_cut[operation]), operation
        assert answer.headers["data-version"] == f"cut:{cut['id']}:{cut['sha256']}", operation
    # The JSON answers say which data they were computed on.
    for operation, answer in on_cut.items():
        if answer.headers["content-type"] == "application/json" and isinstance(answer.json(), dict):
            stated = answer.json().get("data_version")
            if stated is not None:
                assert stated == {
                    "source": "cut",
                    "version": f"cut:{cut['id']}:{cut['sha256']}",
                    "audit_head": cut["audit_head"],
                    "audit_seq": None,
                    "audit_records": cut["audit_records"],
                    "data_cut": cut["id"],
                    "sha256": cut["sha256"],
                }, operation
                assert live[operation].json()["data_version"]["source"] == "live"
    stated = [
        o for o, a in on_cut.items() if "json" in a.headers["content-type"] and "data_version" in a.text
    ]
    assert len(stated) >= 12, stated
    # The answers computed on the study's changed records changed live, not on the cut (the
    # evidence here pools other studies' patients and has no hazard ratios to pool; the list of
    # datasets and the transplant analysis do not depend on what changed).
    unchanged = {o for o in on_cut if _comparable(live[o]) == _comparable(on_cut[o], cut["id"])}
    assert not unchanged & DEPEND_ON_THE_CHANGES, sorted(unchanged & DEPEND_ON_THE_CHANGES)

    # Byte for byte the same again: from this process's store, and from another process that
    # builds the cut's database afresh and keeps no answers.
    again = _ask(client, study_id, cut["id"])
    assert {o: a.content for o, a in again.items()} == {o: a.content for o, a in on_cut.items()}
    with _client(url, f"cut-other-{uuid.uuid4().hex[:6]}") as other:
        other.app.state.analysis_answers.clear()
        afresh = _ask(other, study_id, cut["id"])
        assert len(other.app.state.data_cut_databases) == 1
    assert {o: a.content for o, a in afresh.items()} == {o: a.content for o, a in on_cut.items()}


def test_a_cut_is_refused_to_whoever_may_not_read_all_of_it(seeded: tuple[str, TestClient[Any]]) -> None:
    url, client = seeded
    study_id = _largest_study(client)
    cut = client.post(f"{API}/data-cuts", json={"label": "refusals"}).json()
    survival = f"{API}/studies/{study_id}/survival"
    unknown = client.get(survival, params={"data_cut": str(uuid.uuid4())})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert "data cut" in unknown.json()["detail"]
    malformed = client.get(survival, params={"data_cut": "last-week"})
    assert malformed.status_code == 400 and "data_cut" in malformed.text
    # A grant on one of the cut's studies only: the cut is not theirs to see.
    grants = [{"study_id": study_id, "role": "reader", "sites": None}]
    with _client(url, f"cut-reader-{uuid.uuid4().hex[:6]}", None, grants=grants) as reader:
        assert reader.get(survival).status_code == 200
        refused = reader.get(survival, params={"data_cut": cut["id"]})
        assert refused.status_code == 404, refused.text
    # Writes take no data_cut: the parameter is unknown to them.
    patient = client.get(f"{API}/patients", params={"study_id": study_id}).json()["items"][0]
    write = client.patch(f"{API}/patients/{patient['id']}", params={"data_cut": cut["id"]}, json={"sex": "F"})
    assert write.status_code == 400 and "data_cut" in write.text


@pytest.fixture
def ro_crate_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validator resolves the crate's JSON-LD context over HTTP; there is no network here, so
    it gets the RO-Crate 1.3 context that the rocrate library ships, and nothing else."""
    context = json.loads(importlib.resources.files("rocrate").joinpath("data/ro-crate.jsonld").read_text())

    def send(adapter: requests.adapters.HTTPAdapter, request: Any, **_: Any) -> Any:
        if str(request.url).rstrip("/") != context["@id"]:
            raise requests.ConnectionError(f"no network in the tests: {request.url}")
        body = json.dumps({"@context": context["@context"]}).encode()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body),
            headers={"Content-Type": "application/ld+json"},
            status=200,
            preload_content=False,
            request_url=request.url,
        )
        return adapter.build_response(request, raw)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)


@pytest.fixture
def sparql_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validator's SHACL checks with each SPARQL query parsed once (prepared_once)."""
    monkeypatch.setattr(SPARQLProcessor, "query", prepared_once(SPARQLProcessor.query))


def prepared_once(query: Any) -> Any:
    """SPARQLProcessor.query that parses each query text once: pyshacl sends the same SPARQL
    constraint once per focus node, with other bindings, and rdflib parses it every time (12 of
    the validator's 18 s here). A parsed and translated query is what rdflib's `prepareQuery`
    gives for running many times; the answers do not change."""
    prepared: dict[tuple[str, str | None, tuple[tuple[str, str], ...]], Query] = {}

    def run(
        self: SPARQLProcessor,
        text: str | Query,
        initBindings: Any = None,
        initNs: Any = None,
        base: str | None = None,
        DEBUG: bool = False,
    ) -> Any:
        if isinstance(text, str):
            key = (text, base, tuple(sorted((str(k), str(v)) for k, v in (initNs or {}).items())))
            if key not in prepared:
                prepared[key] = translateQuery(parseQuery(text), base, initNs)
            text = prepared[key]
        return query(self, text, initBindings, initNs, base, DEBUG)

    return run


# rdflib, under the validator, warns about its own API; not ours to mend.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_the_release_package_is_a_valid_ro_crate_of_the_cut_and_its_analyses(
    seeded: tuple[str, TestClient[Any]], ro_crate_context: None, sparql_parsed_once: None, tmp_path: Path
) -> None:
    url, client = seeded
    study_id = _largest_study(client)
    cut = client.post(f"{API}/data-cuts", json={"label": "ASH 2027", "note": "abstract figures"}).json()
    on_cut = {"data_cut": cut["id"]}
    asked = {
        "getSurvival": client.get(f"{API}/studies/{study_id}/survival", params={**on_cut, "endpoint": "OS"}),
        "getSurvivalPlotPng": client.get(f"{API}/studies/{study_id}/survival/plot.png", params=on_cut),
        "getCoxModel": client.get(
            f"{API}/studies/{study_id}/cox", params={**on_cut, "covariates": ["age_years", "sex"]}
        ),
    }
    assert {o: r.status_code for o, r in asked.items()} == dict.fromkeys(asked, 200)
    # A repeat on the cut is the same analysis; a live one is not the cut's.
    assert (
        client.get(f"{API}/studies/{study_id}/survival", params={"endpoint": "OS", **on_cut}).status_code
        == 200
    )
    assert client.get(f"{API}/studies/{study_id}/response-rates").status_code == 200

    response = client.get(f"{API}/data-cuts/{cut['id']}/package")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert client.get(f"{API}/data-cuts/{cut['id']}/package").content == response.content
    path = tmp_path / "package.zip"
    path.write_bytes(response.content)

    settings = services.ValidationSettings(
        rocrate_uri=str(path),
        profile_identifier="ro-crate-1.3",
        requirement_severity=models.Severity.REQUIRED,
    )
    result = services.validate(settings)
    assert not result.has_issues(), [issue.message for issue in result.get_issues()]

    crate = ROCrate(str(path))
    root = crate.root_dataset
    assert (root["name"], root["description"], root["identifier"]) == (
        "ASH 2027",
        "abstract figures",
        f"urn:uuid:{cut['id']}",
    )
    assert root["license"].id == "https://spdx.org/licenses/CC-BY-4.0"
    assert root["version"] == f"{cut['audit_records']}:{cut['audit_head']}"
    studies = client.get(f"{API}/studies").json()["items"]
    owners = {s.get("sponsor") or s.get("institution") for s in studies} - {None}
    assert {c["name"] for c in _many(root["creator"])} == owners and owners
    assert {a.id.removeprefix("#study-") for a in _many(root["about"])} == {s["id"] for s in studies}

    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        files = {e.id: e for e in crate.get_entities() if e.type == "File"}
        assert set(files) | {"ro-crate-metadata.json"} == names
        for name, entity in files.items():
            assert entity["sha256"] == hashlib.sha256(archive.read(name)).hexdigest(), name
            assert entity["contentSize"] == str(archive.getinfo(name).file_size), name
        frozen = client.get(f"{API}/data-cuts/{cut['id']}/content").content
        assert archive.read("data-cut.json") == frozen
        assert files["data-cut.json"]["sha256"] == cut["sha256"]
        for study in studies:
            exported = json.loads(archive.read(f"export/study-{study['id']}.json"))
            assert exported["exported_at"].startswith(cut["created_at"][:19])
            assert f"export/study-{study['id']}/patients.csv" in names

        actions = sorted((e for e in crate.get_entities() if e.type == "CreateAction"), key=lambda e: e.id)
        assert [a["name"] for a in actions] == list(asked)  # in the order first run, each once
        for action in actions:
            assert archive.read(action["result"].id) == asked[action["name"]].content
        parameters = action_parameters(actions[2])
        assert parameters == [("covariates", "age_years"), ("covariates", "sex")]
        assert action_parameters(actions[0]) == [("endpoint", "OS")]

    # Only those who may read every study of the cut get its package.
    grants = [{"study_id": study_id, "role": "reader", "sites": None}]
    with _client(url, f"cut-package-{uuid.uuid4().hex[:6]}", None, grants=grants) as reader:
        assert reader.get(f"{API}/data-cuts/{cut['id']}/package").status_code == 404


def _many(value: Any) -> list[Any]:
    """A property of an entity as a list (JSON-LD writes one value without the list)."""
    return value if isinstance(value, list) else [value]


def action_parameters(action: Any) -> list[tuple[str, str]]:
    return [(o["name"], o["value"]) for o in _many(action["object"]) if o.type == "PropertyValue"]
