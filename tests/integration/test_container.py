"""The Dockerfile, checked without a Docker engine: hadolint finds nothing, and the image is
built the way operators expect (two stages, runtime without uv, pinned base, numeric user)."""

# ruff: noqa: S603 - runs this environment's own hadolint binary
import subprocess
import sys
from pathlib import Path

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
