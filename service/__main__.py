"""Command line: `python -m service serve|migrate|seed|openapi`."""

import argparse
import asyncio
import json
import sys
from pathlib import Path

from service.settings import Settings


def serve(settings: Settings) -> None:
    import uvicorn

    from service.app import create_app
    from service.db.migrate import upgrade
    from service.seed.loader import seed_if_empty

    upgrade(settings.database_url)
    loaded = asyncio.run(seed_if_empty(settings))
    if loaded:
        print(f"seed dataset loaded: {', '.join(loaded)}", flush=True)
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
    elif args.command == "openapi":
        export_openapi(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
