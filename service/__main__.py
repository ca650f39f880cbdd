"""Command line: `python -m service serve|migrate|seed|openapi`."""

import argparse
import asyncio
import json
import sys
from pathlib import Path

from service.settings import Settings


async def _create_token(settings: Settings, name: str, role: str, expires_in_days: int | None) -> str:
    from datetime import UTC, datetime, timedelta

    from service.auth.tokens import issue
    from service.db.session import create_engine, session_factory

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session, session.begin():
            expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
            _, secret = await issue(session, name, role, expires)
            return secret
    finally:
        await engine.dispose()


async def _local_admin_token(settings: Settings) -> str | None:
    """On the embedded SQLite default, a first start issues an admin token so the API can be tried at once."""
    from service.auth.tokens import count_tokens
    from service.db.session import create_engine, session_factory

    if not settings.is_sqlite:
        return None
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            if await count_tokens(session):
                return None
    finally:
        await engine.dispose()
    return await _create_token(settings, "local-admin", "admin", None)


async def _verify_audit(settings: Settings) -> tuple[int, str | None]:
    from service.audit.trail import verify
    from service.db.session import create_engine, session_factory

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            return await verify(session)
    finally:
        await engine.dispose()


def serve(settings: Settings) -> None:
    import uvicorn

    from service.app import create_app
    from service.db.migrate import upgrade
    from service.seed.loader import seed_if_empty

    upgrade(settings.database_url)
    loaded = asyncio.run(seed_if_empty(settings))
    if loaded:
        print(f"seed dataset loaded: {', '.join(loaded)}", flush=True)
    secret = asyncio.run(_local_admin_token(settings))
    if secret:
        print(f"local admin token (shown once, keep it): {secret}", flush=True)
        print(
            f"  try: curl -H 'Authorization: Bearer {secret}' http://{settings.host}:{settings.port}/api/v1/studies",
            flush=True,
        )
    print(f"API docs: http://{settings.host}:{settings.port}/docs", flush=True)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower()
    )


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="migrate, seed an empty database, and serve the API")
    commands.add_parser("migrate", help="apply Alembic migrations up to head")
    seed_parser = commands.add_parser("seed", help="load the curated seed dataset")
    seed_parser.add_argument("--replace", action="store_true", help="reload documents already loaded")
    tokens_parser = commands.add_parser("tokens", help="manage API tokens")
    token_commands = tokens_parser.add_subparsers(dest="token_command", required=True)
    create_parser = token_commands.add_parser("create", help="issue a token and print its secret once")
    create_parser.add_argument("--role", choices=["reader", "curator", "admin"], required=True)
    create_parser.add_argument("--name", required=True)
    create_parser.add_argument("--expires-in-days", type=int, default=None)
    audit_parser = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", required=True)
    audit_commands.add_parser("verify", help="check the hash chain of every audit record")
    openapi_parser = commands.add_parser("openapi", help="print or write the OpenAPI document")
    openapi_parser.add_argument("--output", "-o")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if args.command == "serve":
        serve(settings)
    elif args.command == "migrate":
        from service.db.migrate import upgrade

        upgrade(settings.database_url)
    elif args.command == "seed":
        return seed(settings, args.replace)
    elif args.command == "tokens":
        from service.errors import DomainError

        try:
            print(asyncio.run(_create_token(settings, args.name, args.role, args.expires_in_days)))
        except DomainError as exc:
            print(f"tokens create failed: {exc.detail}", file=sys.stderr)
            return 1
    elif args.command == "audit":
        checked, problem = asyncio.run(_verify_audit(settings))
        if problem:
            print(f"audit chain BROKEN after {checked} records: {problem}", file=sys.stderr)
            return 1
        print(f"audit chain verified: {checked} records")
    elif args.command == "openapi":
        export_openapi(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
