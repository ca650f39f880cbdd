# ruff: noqa: S603 - runs this environment's own generator and server
"""A client generated from the committed contract with openapi-python-client works against the
running service: list studies, export one, import it as a new study, read its statistics,
use a conditional read. The contract also names each vocabulary once, documents every header
it sends, and passes Redocly's lint."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import REQUIRE_POSTGRES, fresh_database, issue_token
from tests.integration.test_faults import _free_port, _wait_healthy

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "openapi" / "openapi.json"
BIN = Path(sys.executable).parent
REDOCLY = ROOT / "openapi" / "node_modules" / ".bin" / "redocly"


@pytest.fixture(scope="module")
def registry_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The generated package, imported (generated once per test session and worker)."""
    out = tmp_path_factory.mktemp("generated")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}  # its post-hooks run ruff
    done = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(CONTRACT), "--meta", "none",
         "--config", str(ROOT / "openapi" / "python-client.yaml"), "--output-path", str(out / "registry_client")],
        check=True, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    # Every operation generated with its responses (an unknown media type is a warning, and the
    # function it generates cannot return the body).
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("registry_client")
    finally:
        sys.path.remove(str(out))


@pytest.fixture
def running(backend: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A served registry with the seed dataset: (base URL, curator token)."""
    with fresh_database(backend, tmp_path, migrate=False) as url:
        port, log = _free_port(), tmp_path / "serve.log"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "PORT": str(port),
            "SEED_ON_START": "1",
            "RATE_LIMIT_PER_MINUTE": "0",
        }
        with log.open("ab") as out:
            server = subprocess.Popen([str(BIN / "registry"), "serve"], env=env, stdout=out, stderr=out)
        try:
            _wait_healthy(port, server, log)
            yield f"http://127.0.0.1:{port}", issue_token(url, "generated-client", "curator")
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_a_generated_client_imports_reads_and_exports(registry_client: Any, running: tuple[str, str]) -> None:
    base_url, token = running
    client_module = importlib.import_module("registry_client.client")
    studies_api = importlib.import_module("registry_client.api.studies.list_studies")
    export_api = importlib.import_module("registry_client.api.exchange.export_study")
    import_api = importlib.import_module("registry_client.api.exchange.import_study")
    rates_api = importlib.import_module("registry_client.api.statistics.get_response_rates")
    get_api = importlib.import_module("registry_client.api.studies.get_study")
    models = importlib.import_module("registry_client.models")

    client = client_module.AuthenticatedClient(
        base_url=base_url, token=token, raise_on_unexpected_status=True
    )
    with client:
        page = studies_api.sync(client=client, limit=50)
        assert page.total == 5
        [original] = [s for s in page.items if s.source_document == "004_99c9fed070f33cc4.txt"]
        assert isinstance(original.design, models.Design)  # one enum class per vocabulary

        exported = export_api.sync_detailed(original.id, client=client, format_=models.ExportFormat.JSON)
        assert exported.status_code == 200
        document = json.loads(exported.content)
        document["document"] = "004 copy (generated client test)"
        created = import_api.sync(client=client, body=models.StudyDocument.from_dict(document))
        assert isinstance(created, models.ImportResult) and created.counts["patients"] == 13

        rates = rates_api.sync(created.study_id, client=client)
        original_rates = rates_api.sync(original.id, client=client)
        assert [(g.responders, g.denominator, g.rate) for g in rates.groups] == [
            (g.responders, g.denominator, g.rate) for g in original_rates.groups
        ]

        read = get_api.sync_detailed(created.study_id, client=client)
        etag = read.headers["etag"]
        with client_module.AuthenticatedClient(
            base_url=base_url, token=token, headers={"If-None-Match": etag}
        ) as conditional:
            again = get_api.sync_detailed(created.study_id, client=conditional)
        assert again.status_code == 304 and again.content == b""
        assert read.headers["x-request-id"]

        copy_export = export_api.sync(created.study_id, client=client)
        assert isinstance(copy_export, models.StudyDocument)  # decoded as the contract says
        assert {k: v for k, v in copy_export.to_dict().items() if k != "exported_at"} == {
            k: v for k, v in document.items() if k != "exported_at"
        }
        _exports_every_format_and_fetches_plots(created.study_id, client, models)


def _exports_every_format_and_fetches_plots(study_id: Any, client: Any, models: Any) -> None:
    """One media type per operation: every export format and both image formats through the
    generated functions (the audit's client raised decoding NDJSON and CSV, and parsed no plot)."""
    api = "registry_client.api"
    fhir = importlib.import_module(f"{api}.exchange.export_study_fhir").sync(study_id, client=client)
    assert fhir["resourceType"] == "Bundle" and fhir["entry"]  # application/fhir+json, parsed
    ndjson = importlib.import_module(f"{api}.exchange.export_study_fhir_ndjson").sync(study_id, client=client)
    lines = [json.loads(line) for line in ndjson.splitlines()]
    assert [line["id"] for line in lines] == [entry["resource"]["id"] for entry in fhir["entry"]]
    csv_zip = importlib.import_module(f"{api}.exchange.export_study_csv").sync(study_id, client=client)
    with zipfile.ZipFile(csv_zip.payload) as archive:
        assert "patients.csv" in archive.namelist()
    record = importlib.import_module(f"{api}.exchange.export_study_clinical_trials_gov").sync(
        study_id, client=client
    )
    assert isinstance(record, models.CtgovStudy)
    capability = importlib.import_module(f"{api}.exchange.get_fhir_capability_statement").sync(client=client)
    assert capability.fhir_version == "4.0.1"
    survival = f"{api}.statistics.get_survival_plot"
    svg = importlib.import_module(survival).sync(study_id, client=client)
    assert svg.startswith("<?xml") and "<text" in svg  # SVG as text, its labels as text
    png = importlib.import_module(f"{survival}_png").sync(study_id, client=client)
    assert png.payload.read(4) == b"\x89PNG"
    swimmer = importlib.import_module(f"{api}.statistics.get_swimmer_plot_png").sync(study_id, client=client)
    assert swimmer.payload.read(4) == b"\x89PNG"


def _walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


def test_each_vocabulary_is_one_named_component() -> None:
    contract = json.loads(CONTRACT.read_text())
    components = contract["components"]["schemas"]
    for path, node in _walk(contract):
        if isinstance(node, dict) and "enum" in node and len([v for v in node["enum"] if v is not None]) > 1:
            assert path[:2] == ("components", "schemas") and len(path) == 3, path
    for name in ("Design", "Phase", "OverallStatus", "Sex", "Diagnosis", "ResponseCategory", "GradingSystem"):
        assert "enum" in components[name], name
    design_refs = [p for p, n in _walk(contract) if n == "#/components/schemas/Design"]
    assert len(design_refs) >= 3  # the create, update and read structs (and the list filter) share it


def test_every_response_header_has_a_schema_and_the_sent_ones_are_documented() -> None:
    contract = json.loads(CONTRACT.read_text())
    for path, item in contract["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                headers = response.get("headers", {})
                assert "X-Request-ID" in headers, (path, method, status)
                for name, header in headers.items():
                    assert "schema" in header, (path, method, status, name)
                if path.startswith("/api/") and status != "401":
                    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers)
    created = contract["paths"]["/api/v1/studies"]["post"]["responses"]["201"]["headers"]
    assert "Idempotent-Replayed" in created and "Location" in created and "ETag" in created
    read = contract["paths"]["/api/v1/studies/{id}"]["get"]["responses"]
    assert "304" in read


def test_redocly_lint_finds_no_error() -> None:
    if not REDOCLY.exists():
        if REQUIRE_POSTGRES and shutil.which("npm"):  # CI: make test installs it (npm ci --prefix openapi)
            raise AssertionError(f"{REDOCLY} is missing: run `npm ci --prefix openapi`")
        pytest.skip("the contract linter is not installed (npm ci --prefix openapi)")
    done = subprocess.run(
        [str(REDOCLY), "lint", str(CONTRACT), "--format=json"], capture_output=True, text=True, timeout=300
    )
    report = json.loads(done.stdout)
    assert report["totals"]["errors"] == 0, [p for p in report["problems"] if p["severity"] == "error"]
    # What it still warns about: the open probes and /metrics have no 4xx answer, by design.
    for problem in report["problems"]:
        assert problem["ruleId"] == "operation-4xx-response", problem
        assert problem["location"][0]["pointer"].startswith(("#/paths/~1health", "#/paths/~1metrics"))


def test_spectral_finds_nothing() -> None:
    """Spectral's OpenAPI ruleset (spectral:oas, openapi/.spectral.yaml): no error, no warning
    (tags declared, each operation described, contact given)."""
    spectral = ROOT / "openapi" / "node_modules" / ".bin" / "spectral"
    if not spectral.exists():
        if REQUIRE_POSTGRES and shutil.which("npm"):  # CI: make test installs it (npm ci --prefix openapi)
            raise AssertionError(f"{spectral} is missing: run `npm ci --prefix openapi`")
        pytest.skip("the contract linter is not installed (npm ci --prefix openapi)")
    done = subprocess.run(
        [str(spectral), "lint", str(CONTRACT), "--ruleset", str(ROOT / "openapi" / ".spectral.yaml"), "-f", "json", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert json.loads(done.stdout) == [], done.stdout


def test_error_sources_are_plain_words(client: Any) -> None:
    response = client.get("/api/v1/studies", params={"limit": "many"})
    assert response.status_code == 400
    assert [e["source"] for e in response.json()["errors"]] == ["query"]


def test_conditional_reads(client: Any) -> None:
    created = client.post("/api/v1/studies", json={"title": "Conditional", "design": "case_report"})
    url = f"/api/v1/studies/{created.json()['id']}"
    etag = created.headers["etag"]
    for held in (etag, f"W/{etag}", f'"999", {etag}', "*"):
        response = client.get(url, headers={"If-None-Match": held})
        assert response.status_code == 304 and response.content == b"" and response.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"999"'}).status_code == 200
    changed = client.patch(url, json={"title": "Conditional, changed"})
    assert client.get(url, headers={"If-None-Match": etag}).json()["version"] == changed.json()["version"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == httpx.codes.OK
