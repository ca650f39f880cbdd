# ruff: noqa: S603 - runs this environment's own console script
"""The `registry` console script: the CLI without activating the virtual environment."""

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.databases import fresh_database
from tests.integration.test_faults import _free_port, _wait_healthy

SCRIPT = Path(sys.executable).parent / "registry"


def test_serve_help_lists_its_options() -> None:
    shown = subprocess.run(
        [str(SCRIPT), "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: registry serve" in shown
    for option in ("--host", "--port", "--no-seed"):
        assert option in shown


def test_serve_options_override_the_environment(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path, migrate=False) as url:
        port = _free_port()
        log = tmp_path / "serve.log"
        # PORT and SEED_ON_START in the environment say otherwise: the options win.
        env = {**os.environ, "DATABASE_URL": url, "PORT": "1", "SEED_ON_START": "1", "LOG_LEVEL": "WARNING"}
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(SCRIPT), "serve", "--port", str(port), "--no-seed"], env=env, stdout=out, stderr=out
            )
        try:
            _wait_healthy(port, process, log)
            assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()["status"] == "ready"
        finally:
            process.terminate()
            process.wait(timeout=30)
        assert "seed dataset loaded" not in log.read_text()
