"""Operator commands: the audit chain's anchor and key, tokens from the command line on the
trail, and backup/restore with the chain still verifying on the restored copy."""

import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.__main__ import main
from tests.databases import fresh_database


def _execute(url: str, *statements: str) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                results = [await connection.execute(text(s)) for s in statements]
                return [r.all() if r.returns_rows else None for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _cli(
    monkeypatch: pytest.MonkeyPatch, url: str, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", url)
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _drop_last_record(url: str, backend: str) -> None:
    """What a database superuser could do around the append-only triggers."""
    if backend == "postgres":
        _execute(
            url,
            "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only",
            "DELETE FROM audit_records WHERE seq = (SELECT max(seq) FROM audit_records)",
            "ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only",
        )
    else:
        _execute(url, "DROP TRIGGER audit_records_no_delete")
        _execute(url, "DELETE FROM audit_records WHERE seq = (SELECT max(seq) FROM audit_records)")


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Any:
    with fresh_database(backend, tmp_path) as url:
        yield url


def test_tokens_from_the_command_line_are_audited(
    own_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(
        monkeypatch, own_database, capsys, "tokens", "create", "--role", "reader", "--name", "ops"
    )
    assert code == 0 and out.startswith("lor_")
    assert _cli(monkeypatch, own_database, capsys, "tokens", "revoke", "--name", "ops") == (0, "revoked\n")
    assert _cli(monkeypatch, own_database, capsys, "tokens", "revoke", "--name", "ops") == (
        0,
        "already revoked\n",
    )
    code, listing = _cli(monkeypatch, own_database, capsys, "tokens", "list")
    assert code == 0 and listing == "ops\treader\trevoked\n"
    [rows] = _execute(
        own_database,
        "SELECT action, actor, reason FROM audit_records WHERE resource_type = 'api_token' ORDER BY seq",
    )
    assert [(r[0], r[1]) for r in rows] == [("create", "command-line"), ("update", "command-line")]
    assert "command line" in rows[0][2]


def test_a_token_with_grants_from_the_command_line(
    own_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uuid

    base = ("tokens", "create", "--name", "centre")
    assert _cli(monkeypatch, own_database, capsys, *base, "--grant", "not-a-study:reader")[0] == 2
    unknown = str(uuid.uuid4())
    code, out = _cli(monkeypatch, own_database, capsys, *base, "--grant", f"{unknown}:reader")
    assert code == 1 and "does not exist" in out
    assert _cli(monkeypatch, own_database, capsys, "seed")[0] == 0
    [rows] = _execute(own_database, "SELECT id FROM studies ORDER BY id LIMIT 1")
    study = str(uuid.UUID(str(rows[0][0])))
    code, out = _cli(monkeypatch, own_database, capsys, *base, "--grant", f"{study}:aggregate")
    assert code == 0 and out.startswith("lor_")
    code, listing = _cli(monkeypatch, own_database, capsys, "tokens", "list")
    assert "centre\tgrants(1)\tactive" in listing


def test_the_anchored_head_detects_truncation_and_rewriting(
    own_database: str, backend: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b", "c"):
        _cli(monkeypatch, own_database, capsys, "tokens", "create", "--role", "reader", "--name", name)
    code, head = _cli(monkeypatch, own_database, capsys, "audit", "head")
    assert code == 0 and head.startswith("3:")
    anchor = head.strip()
    code, out = _cli(monkeypatch, own_database, capsys, "audit", "verify", "--head", anchor)
    assert code == 0 and "anchored head 3 matches" in out
    _drop_last_record(own_database, backend)
    # Without the anchor the shortened chain is still a valid chain ...
    assert _cli(monkeypatch, own_database, capsys, "audit", "verify")[0] == 0
    # ... with it, the truncation shows.
    code, out = _cli(monkeypatch, own_database, capsys, "audit", "verify", "--head", anchor)
    assert code == 1 and "truncated" in out
    assert _cli(monkeypatch, own_database, capsys, "audit", "verify", "--head", "3:abc")[0] == 2


def test_a_rewritten_and_recomputed_chain_fails_against_its_anchor(
    own_database: str, backend: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.audit.trail import digest
    from service.db.models import AuditRecord

    for name in ("a", "b"):
        _cli(monkeypatch, own_database, capsys, "tokens", "create", "--role", "reader", "--name", name)
    anchor = _cli(monkeypatch, own_database, capsys, "audit", "head")[1].strip()
    # Rewrite the first record's actor and recompute every hash after it, as an attacker with
    # the (public) algorithm could: the chain verifies on its own, but not against the anchor.
    [rows] = _execute(
        own_database,
        "SELECT seq, recorded_at, actor, actor_role, action, resource_type, resource_id, changes, reason, prev_hash FROM audit_records ORDER BY seq",
    )
    previous = "0" * 64
    updates = []
    for i, row in enumerate(rows):
        record = AuditRecord(
            seq=row[0], recorded_at=row[1], actor="intruder" if i == 0 else row[2], actor_role=row[3],
            action=row[4], resource_type=row[5], resource_id=uuid.UUID(str(row[6])),
            changes=row[7] if isinstance(row[7], dict) else json.loads(row[7]),
            reason=row[8], prev_hash=previous, hash="",
        )  # fmt: skip
        value = digest(record)
        updates.append(
            f"UPDATE audit_records SET actor = '{record.actor}', prev_hash = '{previous}', hash = '{value}' WHERE seq = {row[0]}"  # noqa: S608 - test-made values
        )
        previous = value
    if backend == "postgres":
        _execute(
            own_database,
            "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only",
            *updates,
            "ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only",
        )
    else:
        _execute(own_database, "DROP TRIGGER audit_records_no_update", *updates)
    assert _cli(monkeypatch, own_database, capsys, "audit", "verify")[0] == 0
    code, out = _cli(monkeypatch, own_database, capsys, "audit", "verify", "--head", anchor)
    assert code == 1 and "anchored head" in out


def test_a_keyed_chain_needs_the_key(
    own_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(monkeypatch, own_database, capsys, "tokens", "create", "--role", "reader", "--name", "plain")
    monkeypatch.setenv("AUDIT_HMAC_KEY", "k" * 32)
    _cli(monkeypatch, own_database, capsys, "tokens", "create", "--role", "reader", "--name", "keyed")
    [rows] = _execute(own_database, "SELECT hash_alg FROM audit_records ORDER BY seq")
    assert [r[0] for r in rows] == ["sha256", "hmac-sha256"]
    assert _cli(monkeypatch, own_database, capsys, "audit", "verify")[0] == 0
    monkeypatch.setenv("AUDIT_HMAC_KEY", "wrong" * 8)
    code, out = _cli(monkeypatch, own_database, capsys, "audit", "verify")
    assert code == 1 and "altered" in out
    monkeypatch.delenv("AUDIT_HMAC_KEY")
    code, out = _cli(monkeypatch, own_database, capsys, "audit", "verify")
    assert code == 1 and "AUDIT_HMAC_KEY" in out


def test_backup_and_restore_keep_data_and_chain(
    own_database: str,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("a", "b"):
        _cli(monkeypatch, own_database, capsys, "tokens", "create", "--role", "reader", "--name", name)
    archive = tmp_path / ("backup.db" if backend == "sqlite" else "backup.dump")
    code, out = _cli(monkeypatch, own_database, capsys, "backup", str(archive))
    assert code == 0 and archive.exists(), out
    with fresh_database(backend, tmp_path, migrate=False) as restored:
        if backend == "sqlite":
            Path(make_url(restored).database or "").write_bytes(archive.read_bytes())
        else:
            dsn = make_url(restored).set(drivername="postgresql").render_as_string(hide_password=False)
            done = subprocess.run(["pg_restore", "--no-owner", "--dbname", dsn, str(archive)], check=False)  # noqa: S603, S607
            assert done.returncode == 0
        code, out = _cli(monkeypatch, restored, capsys, "audit", "verify")
        assert code == 0 and "2 records" in out
        [[names]] = _execute(restored, "SELECT count(*) FROM api_tokens")
        assert names[0] == 2


def test_backup_gives_pg_dump_the_password_through_its_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    from service.__main__ import backup
    from service.settings import Settings

    seen: dict[str, Any] = {}

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        seen["argv"], seen["env"] = argv, kwargs.get("env", {})
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(subprocess, "run", run)
    url = "postgresql+asyncpg://registry:s3cret-pw@db.example:5433/registry"
    assert backup(Settings(database_url=url), str(tmp_path / "never-written.dump")) == 0
    assert not any("s3cret-pw" in part for part in seen["argv"])
    assert seen["env"]["PGPASSWORD"] == "s3cret-pw" and seen["env"]["PGHOST"] == "db.example"
    assert (seen["env"]["PGPORT"], seen["env"]["PGUSER"], seen["env"]["PGDATABASE"]) == (
        "5433",
        "registry",
        "registry",
    )
