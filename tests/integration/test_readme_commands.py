# ruff: noqa: S603, S607 - runs the README's own shell block with this environment's tools
"""The README's commands work as written: its token block runs in bash, from the top of the
clone, against a served registry (the only change: the admin token `make run` would print)."""

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import fresh_database, issue_token
from tests.integration.test_faults import _free_port, _wait_healthy

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


@pytest.fixture
def served(backend: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(database URL, port) of a running registry."""
    with fresh_database(backend, tmp_path) as url:
        port, log = _free_port(), tmp_path / "serve.log"
        env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "RATE_LIMIT_PER_MINUTE": "0"}
        with log.open("ab") as out:
            server = subprocess.Popen(
                [str(BIN / "registry"), "serve", "--no-seed"], env=env, stdout=out, stderr=out
            )
        try:
            _wait_healthy(port, server, log)
            yield url, str(port)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _block(containing: str) -> str:
    readme = (ROOT / "README.md").read_text()
    [block] = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if containing in b]
    return block


def test_the_token_commands_run_as_written(served: tuple[str, str]) -> None:
    url, port = served
    admin = issue_token(url, "readme-admin", "admin")
    script = _block("tokens create").replace("ADMIN=lor_...", f"ADMIN={admin}")
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script + '\necho "revoked: $TOKEN_ID"'],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    revoked = re.search(r"revoked: ([0-9a-f-]{36})", done.stdout)
    assert revoked is not None, done.stdout
    assert "lor_" in done.stdout  # the CLI printed alice's token once


def test_the_audit_commands_run_as_written(served: tuple[str, str], tmp_path: Path) -> None:
    url, _ = served
    lines = [line for line in _block("audit verify").splitlines() if "registry audit" in line]
    assert len(lines) == 3
    done = subprocess.run(
        # in a scratch directory (the block writes audit-head.txt), the CLI by its path
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines).replace(".venv/bin/registry", f"{BIN}/registry")],
        cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "audit-head.txt").read_text().count(":") == 1
