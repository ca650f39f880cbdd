"""The Dockerfile, checked without a Docker engine: hadolint finds nothing, and the image is
built the way operators expect (two stages, runtime without uv, pinned base, numeric user)."""

# ruff: noqa: S603 - runs this environment's own hadolint binary
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "style", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", (
        result.stdout + result.stderr
    )


def test_the_image_is_multi_stage_pinned_and_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.split(" AS runtime", 1)[1]
    assert " AS build" in text and "@sha256:" in text.split("FROM", 1)[0]
    assert "pip install" not in runtime and "uv sync" not in runtime  # no build tools at run time
    assert "USER 10001:10001" in runtime and 'VOLUME ["/app/var"]' in runtime
    assert "HEALTHCHECK" in runtime and 'CMD ["python"' in runtime
    assert "org.opencontainers.image.revision" in runtime


def test_compose_runs_two_replicas_behind_a_proxy_on_one_postgres() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    replicas = [name for name, spec in services.items() if spec.get("build")]
    assert replicas == ["api-1", "api-2"]
    known = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', (ROOT / "service/settings.py").read_text()))
    for name in replicas:
        spec = services[name]
        env = spec["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://") and "@db:5432/" in env["DATABASE_URL"]
        assert env["RATE_LIMIT_STORE_URL"].startswith("redis://valkey:")
        # Every variable is one the service reads (uvicorn reads FORWARDED_ALLOW_IPS itself).
        assert set(env) - {"FORWARDED_ALLOW_IPS"} <= known, set(env) - known
        assert spec["depends_on"]["db"]["condition"] == "service_healthy"
        assert "/health/ready" in " ".join(spec["healthcheck"]["test"])
        # Docker's stop timeout outlasts the drain the service allows itself.
        assert int(spec["stop_grace_period"].removesuffix("s")) > int(env["SHUTDOWN_GRACE_SECONDS"])
    assert services["db"]["image"].startswith("postgres:")
    proxy = services["proxy"]
    mounted = proxy["volumes"][0].split(":")[0]
    nginx = (ROOT / mounted).read_text()
    upstream = re.search(r"upstream registry \{(.*?)\}", nginx, re.S)
    assert upstream is not None
    assert re.findall(r"server (api-\d):8000", upstream.group(1)) == replicas
    included = {v.split(":")[1]: ROOT / v.split(":")[0] for v in proxy["volumes"]}
    for name in re.findall(r"include (\S+);", nginx):
        assert "proxy_set_header X-Request-ID" in included[name].read_text()
    assert set(proxy["depends_on"]) == set(replicas)
    # No default database password: compose refuses to start without one.
    text = (ROOT / "compose.yaml").read_text()
    assert "POSTGRES_PASSWORD:-" not in text and "${POSTGRES_PASSWORD:?" in text
    # Prometheus scrapes every replica's /metrics.
    prometheus = services["prometheus"]
    config = yaml.safe_load((ROOT / prometheus["volumes"][0].split(":")[0]).read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"{name}:8000" for name in replicas]
    # Every image pulled is pinned by digest (the tag kept for the reader); the replicas are built.
    for name, spec in services.items():
        if name in replicas:
            continue
        assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}", spec["image"]), (name, spec["image"])


def _megabytes(size: str) -> int:
    return int(size.removesuffix("m")) * 1024 * 1024


def test_the_proxy_takes_the_bodies_the_service_takes() -> None:
    """nginx's body limits per route are the service's: 1 MiB by default, the import's limit on
    exactly the import operations (an import the service accepts is not refused in front of it)."""
    from service.exchange.controller import MAX_IMPORT_BYTES

    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    server = nginx.split("server {", 1)[1]
    default = re.search(r"^    client_max_body_size (\d+m);", server, re.M)
    assert default is not None and _megabytes(default.group(1)) == 1_048_576  # service/app.py
    locations = dict(re.findall(r"location ~ (\S+) \{[^}]*?client_max_body_size (\d+m);", server, re.S))
    contract = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    imports = {
        path
        for path, item in contract["paths"].items()
        if "post" in item and item["post"]["operationId"] in ("importStudy", "importClinicalTrialsGovStudy")
    }
    assert len(imports) == 2
    for path in contract["paths"]:
        larger = [size for pattern, size in locations.items() if re.match(pattern, path)]
        assert [_megabytes(s) for s in larger] == ([MAX_IMPORT_BYTES] if path in imports else []), path


def test_every_setting_is_documented_in_the_readme_with_its_default() -> None:
    settings = (ROOT / "service/settings.py").read_text()
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name, default in re.findall(r'os\.environ\.get\("([A-Z_]+)"(?:, "([^"]*)")?\)', settings):
        row = next((line for line in table.splitlines() if f"`{name}`" in line), None)
        assert row is not None, f"{name} is not in the README's configuration table"
        if default:
            assert f"`{default}`" in row or default in row, (name, default, row)


def test_the_proxy_configuration_is_valid_nginx(tmp_path: Path) -> None:
    """`nginx -t` on deploy/nginx.conf with its include, the replicas' names replaced by a local
    address (nginx resolves upstream names when it reads the file)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.skip("nginx is not installed here (apt-get install nginx-light)")
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = re.sub(r"api-\d:8000", "127.0.0.1:8000", site)
    site = site.replace("/etc/nginx/registry-proxy.conf", str(ROOT / "deploy" / "registry-proxy.conf"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    done = subprocess.run([binary, "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
