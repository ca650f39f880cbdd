"""Command line: `python -m service serve|migrate|seed|tokens|audit|backup|openapi`."""

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from service.settings import Settings

COMMAND_LINE = ("command-line", "admin")


@asynccontextmanager
async def _session(
    settings: Settings, write_as: tuple[str, str] | None = None, reason: str | None = None
) -> AsyncIterator[Any]:
    """A session on its own engine for one command; with `write_as`, one write transaction whose
    audit records name that actor and `reason`."""
    from service.db.session import begin_write, create_engine, session_factory

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            if write_as is None:
                yield session
                return
            async with session.begin():
                await begin_write(session)
                session.info["actor"] = write_as
                session.info["reason"] = reason
                yield session
    finally:
        await engine.dispose()


async def _create_token(
    settings: Settings,
    name: str,
    role: str | None,
    expires_in_days: int | None,
    actor: tuple[str, str] = COMMAND_LINE,
    grants: list[Any] | None = None,
) -> str:
    from datetime import UTC, datetime, timedelta

    from service.auth.tokens import issue

    async with _session(settings, actor, "token issued from the command line") as session:
        expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        _, secret = await issue(session, name, role, expires, grants)
        return secret


def parse_grant(text: str) -> Any:
    """`STUDY_ID:ROLE` or `STUDY_ID:ROLE:SITE_ID,SITE_ID` as a Grant (ValueError otherwise)."""
    import msgspec

    from service.access.grants import Grant

    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"{text!r}: expected STUDY_ID:ROLE or STUDY_ID:ROLE:SITE_ID,SITE_ID")
    fields: dict[str, Any] = {"study_id": parts[0], "role": parts[1]}
    if len(parts) == 3:
        fields["sites"] = [s for s in parts[2].split(",") if s]
    try:
        return msgspec.convert(fields, Grant)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{text!r}: {exc}") from exc


def _token_state(row: Any) -> str:
    if row.revoked_at:
        return "revoked"
    return f"expires {row.expires_at}" if row.expires_at else "active"


async def _list_tokens(settings: Settings) -> list[str]:
    from sqlmodel import col, select

    from service.db.models import ApiToken

    async with _session(settings) as session:
        rows = (await session.scalars(select(ApiToken).order_by(col(ApiToken.id)))).all()
        return [
            f"{row.name}\t{row.role or f'grants({len(row.grants or [])})'}\t{_token_state(row)}"
            for row in rows
        ]


async def _revoke_token(settings: Settings, name: str) -> bool | None:
    """True when revoked now, False when it already was, None when no token has that name."""
    from sqlmodel import select

    from service.auth.tokens import revoke
    from service.db.models import ApiToken

    async with _session(settings, COMMAND_LINE, "token revoked from the command line") as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.name == name))
        return None if row is None else await revoke(session, row)


async def _local_admin_token(settings: Settings) -> str | None:
    """On the embedded SQLite default, a first start issues an admin token so the API can be tried at once."""
    from service.auth.tokens import count_tokens

    if not settings.is_sqlite:
        return None
    async with _session(settings) as session:
        if await count_tokens(session):
            return None
    return await _create_token(settings, "local-admin", "admin", None, actor=("first-start", "system"))


async def _verify_audit(settings: Settings, anchor: tuple[int, str] | None) -> tuple[int, str | None]:
    from service.audit.trail import verify

    async with _session(settings) as session:
        return await verify(session, anchor)


async def _audit_head(settings: Settings) -> tuple[int, str]:
    from service.audit.trail import head

    async with _session(settings) as session:
        return await head(session)


def prepare(settings: Settings) -> str | None:
    """Migrate, seed an empty database and, on the embedded default, issue the first admin
    token: under the startup lock, so replicas started together take turns."""
    from service.db.migrate import upgrade
    from service.db.startup_lock import startup_lock
    from service.seed.loader import seed_if_empty

    with startup_lock(settings.database_url):
        upgrade(settings.database_url)
        loaded = asyncio.run(seed_if_empty(settings)) if settings.seed_on_start else []
        if loaded:  # a log line like the others (JSON in production), not bare text among them
            logging.getLogger("service.seed").info("seed dataset loaded", extra={"documents": loaded})
        return asyncio.run(_local_admin_token(settings))


def pg_environment(url: Any) -> dict[str, str]:
    """libpq's environment for `url`: the password goes to pg_dump through PGPASSWORD, never on
    its command line, where any local user could read it in /proc/<pid>/cmdline."""
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    return {**os.environ, **{k: v for k, v in values.items() if v}}


def backup(settings: Settings, destination: str) -> int:
    """SQLite: an online, consistent copy (sqlite3 backup API) while the service runs.
    Postgres: pg_dump in its custom format (restore with pg_restore)."""
    import subprocess

    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        if not url.database or url.database == ":memory:":
            print("backup needs a file database", file=sys.stderr)
            return 1
        source = sqlite3.connect(url.database)
        target = sqlite3.connect(destination)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        print(f"backup written: {destination} (SQLite online backup)")
        return 0
    done = subprocess.run(  # noqa: S603 - arguments are ours, no shell
        ["pg_dump", "--format=custom", "--no-owner", f"--file={destination}"],  # noqa: S607
        env=pg_environment(url),
        check=False,
    )
    if done.returncode == 0:
        print(f"backup written: {destination} (pg_dump custom format; restore with pg_restore)")
    return done.returncode


def seed(settings: Settings, replace: bool) -> int:
    from service.seed.loader import SeedError, load_all

    try:
        report = asyncio.run(load_all(settings, replace=replace))
    except SeedError as exc:
        print(f"seed failed: {exc}", file=sys.stderr)
        return 1
    for line in report:
        print(line)
    return 0


def export_openapi(output: str | None) -> None:
    from service.app import create_app
    from service.openapi_export import openapi_document

    text = (
        json.dumps(
            openapi_document(create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))),
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)


def tokens(settings: Settings, args: argparse.Namespace) -> int:
    from service.errors import DomainError

    if args.token_command == "list":  # noqa: S105 - a subcommand name
        for line in asyncio.run(_list_tokens(settings)):
            print(line)
        return 0
    if args.token_command == "revoke":  # noqa: S105 - a subcommand name
        revoked = asyncio.run(_revoke_token(settings, args.name))
        if revoked is None:
            print(f"no token named {args.name!r}", file=sys.stderr)
            return 1
        print("revoked" if revoked else "already revoked")
        return 0
    try:
        grants = [parse_grant(text) for text in args.grant] if args.grant else None
    except ValueError as exc:
        print(f"--grant {exc}", file=sys.stderr)
        return 2
    try:
        print(asyncio.run(_create_token(settings, args.name, args.role, args.expires_in_days, grants=grants)))
    except DomainError as exc:
        print(f"tokens create failed: {exc.detail}", file=sys.stderr)
        return 1
    return 0


def audit(settings: Settings, args: argparse.Namespace) -> int:
    from service.audit.trail import parse_head

    if args.audit_command == "head":
        count, value = asyncio.run(_audit_head(settings))
        print(f"{count}:{value}")
        return 0
    try:
        anchor = parse_head(args.head) if args.head else None
    except ValueError as exc:
        print(f"--head: {exc}", file=sys.stderr)
        return 2
    checked, problem = asyncio.run(_verify_audit(settings, anchor))
    if problem:
        print(f"audit chain BROKEN after {checked} records: {problem}", file=sys.stderr)
        return 1
    print(
        f"audit chain verified: {checked} records"
        + (f", anchored head {anchor[0]} matches" if anchor else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="registry", description="The leukemia outcomes registry (also: python -m service)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="migrate, seed an empty database, and serve the API",
        description="Wait for the database (DB_WAIT_SECONDS), migrate DATABASE_URL to head and load the "
        "seed dataset into an empty database unless told not to (under the startup lock, so replicas "
        "take turns), then serve the API with WEB_CONCURRENCY uvicorn workers; SIGTERM lets requests in "
        "flight finish (SHUTDOWN_GRACE_SECONDS). Options override the environment (HOST, PORT, "
        "SEED_ON_START); every other setting is read from the environment (README, Configuration).",
    )
    serve_parser.add_argument("--host", help="address to listen on (default: HOST, else 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port to listen on (default: PORT, else 8000)")
    serve_parser.add_argument(
        "--no-seed", action="store_true", help="start with an empty database (as SEED_ON_START=0)"
    )
    commands.add_parser("migrate", help="apply Alembic migrations up to head")
    seed_parser = commands.add_parser("seed", help="load the curated seed dataset")
    seed_parser.add_argument("--replace", action="store_true", help="reload documents already loaded")
    tokens_parser = commands.add_parser("tokens", help="manage API tokens")
    token_commands = tokens_parser.add_subparsers(dest="token_command", required=True)
    create_parser = token_commands.add_parser("create", help="issue a token and print its secret once")
    access = create_parser.add_mutually_exclusive_group(required=True)
    access.add_argument("--role", choices=["reader", "curator", "admin"])
    access.add_argument(
        "--grant",
        action="append",
        metavar="STUDY_ID:ROLE[:SITE_ID,…]",
        help="a grant (role curator, reader or aggregate), repeatable, instead of a global role",
    )
    create_parser.add_argument("--name", required=True)
    create_parser.add_argument("--expires-in-days", type=int, default=None)
    token_commands.add_parser("list", help="list tokens (names, roles, state; never secrets)")
    revoke_parser = token_commands.add_parser("revoke", help="revoke a token by name (audited)")
    revoke_parser.add_argument("--name", required=True)
    audit_parser = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify_parser = audit_commands.add_parser("verify", help="check the hash chain of every audit record")
    verify_parser.add_argument(
        "--head", help="COUNT:HASH printed earlier by `audit head`: also detect truncation or rewriting"
    )
    audit_commands.add_parser("head", help="print the chain head (COUNT:HASH) to keep outside the database")
    backup_parser = commands.add_parser("backup", help="write a consistent backup of the database")
    backup_parser.add_argument("destination", help="file to write (SQLite file, or pg_dump custom archive)")
    openapi_parser = commands.add_parser("openapi", help="print or write the OpenAPI document")
    openapi_parser.add_argument("--output", "-o")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if args.command == "serve":
        overrides: dict[str, Any] = {"host": args.host, "port": args.port}
        if args.no_seed:
            overrides["seed_on_start"] = False
        from service.server import serve

        return serve(
            dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None}), prepare
        )
    elif args.command == "migrate":
        from service.db.migrate import upgrade

        upgrade(settings.database_url)
    elif args.command == "seed":
        return seed(settings, args.replace)
    elif args.command == "tokens":
        return tokens(settings, args)
    elif args.command == "audit":
        return audit(settings, args)
    elif args.command == "backup":
        return backup(settings, args.destination)
    elif args.command == "openapi":
        export_openapi(args.output)
    return 0


def run() -> None:
    """The `registry` console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
