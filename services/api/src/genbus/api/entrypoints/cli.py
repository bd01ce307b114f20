"""`genbus-api`: serve (the default), consumers, migrate, manage API keys, init the bucket.

`serve` runs what `GENBUS_API_ROLE` says (`all`: HTTP and the event consumers; `http`: HTTP
only; `consumers`: as `genbus-api consumers`). `consumers` runs the event consumers, the
deadline reconciler and the purger without an HTTP API, as a deployable of their own.

`keys create` prints the new key once, as JSON (`{"id", "user_id", "name", "admin", "prefix",
"key"}`), so scripts can read it; `keys list` and `keys revoke` never print a secret.
`keys limits` / `keys show` manage a key's tier and overrides, `usage` sums generations and
costs over a time range (`cli_limits`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import uvicorn

from genbus.api.adapters.tables import outbox
from genbus.api.bootstrap import TOPOLOGY
from genbus.api.config import ApiSettings
from genbus.api.domain.api_keys import ApiKey
from genbus.api.domain.errors import ApiKeyNotFound
from genbus.api.domain.limits import Tiers
from genbus.api.entrypoints import cli_limits
from genbus.api.entrypoints.http.app import create_app
from genbus.api.service_layer.api_keys import (
    IssuedKey,
    issue_api_key,
    list_api_keys,
    revoke_api_key,
)
from genbus.api.service_layer.unit_of_work import SqlUnitOfWork
from genbus.runtime.connection import fill_environment
from genbus.runtime.db import create_engine
from genbus.runtime.failures import one_line_failure
from genbus.runtime.logging import configure_logging
from genbus.runtime.migrations import upgrade_to_head
from genbus.runtime.tracing import configure_tracing
from genbus.storage import ObjectStore, StorageError, StorageSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrate(settings: ApiSettings) -> None:
    upgrade_to_head(MIGRATIONS, settings.database_url, "api")


def serve(settings: ApiSettings) -> None:
    # Before the event loop: Alembic runs its own (see genbus.runtime.migrations).
    migrate(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


def serve_consumers(settings: ApiSettings) -> None:
    from genbus.api.entrypoints.consumers_process import run_consumers
    from genbus.runtime.service import run_service

    migrate(settings)
    run_service(lambda stop: run_consumers(settings, stop))


def create_key(
    settings: ApiSettings,
    *,
    user_id: str,
    name: str,
    admin: bool = False,
    tier: str | None = None,
) -> IssuedKey:
    """Migrate, then issue a key (what `genbus-api keys create` does); the secret is in the
    result only."""
    migrate(settings)

    async def issue() -> IssuedKey:
        engine = create_engine(
            settings.database_url, pool_size=1, max_overflow=0, timeouts=settings.db_timeouts()
        )
        try:
            uow = SqlUnitOfWork(engine, outbox, TOPOLOGY)
            return await issue_api_key(
                uow,
                user_id=user_id,
                name=name,
                admin=admin,
                now=datetime.now(UTC),
                tier=tier,
                tiers=Tiers(settings.tiers, settings.default_tier),
            )
        finally:
            await engine.dispose()

    return asyncio.run(issue())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genbus-api")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="migrate, then serve HTTP and consume events (default)")
    sub.add_parser(
        "consumers",
        help="migrate, then consume events, reconcile deadlines and purge (no HTTP API)",
    )
    sub.add_parser("migrate", help="migrate the api schema and exit")
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key; prints it once, as JSON")
    create.add_argument("--user", required=True, help="the user the key acts for")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--admin", action="store_true", help="may also read any user's generations")
    create.add_argument("--tier", help="the key's tier (default: GENBUS_API_DEFAULT_TIER)")
    listing = keys.add_parser("list", help="list keys as JSON (never the secrets)")
    listing.add_argument("--user", help="only this user's keys")
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", help="the key's id, as `keys create` / `keys list` show it")
    cli_limits.add_parsers(keys, sub)
    storage = sub.add_parser("storage", help="the object store (GENBUS_S3_*)").add_subparsers(
        dest="action", required=True
    )
    init = storage.add_parser("init", help="create the bucket unless it exists (dev stacks)")
    init.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command not in (None, "serve"):
        fill_environment()  # `make run`'s .local/connection.json fills what the env lacks
    settings = ApiSettings()
    configure_logging("api", settings.log_format, settings.log_level)
    if args.command == "consumers" or (
        args.command in (None, "serve") and settings.role == "consumers"
    ):
        configure_tracing("api")
        serve_consumers(settings.model_copy(update={"role": "consumers"}))
        return
    if args.command in (None, "serve"):
        configure_tracing("api")
        serve(settings)
        return
    # Commands print JSON on stdout for scripts: their logs go to stderr.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    try:
        _command(args, settings)
    except SystemExit:
        raise
    except Exception as exc:  # one line, never a traceback: most often Postgres is down
        if args.command == "storage":
            endpoint = StorageSettings().endpoint_url or "S3"
            sys.exit(f"genbus-api: {one_line_failure(exc, 'the object store', endpoint)}")
        sys.exit(f"genbus-api: {one_line_failure(exc, 'Postgres', settings.database_url)}")


def _command(args: argparse.Namespace, settings: ApiSettings) -> None:
    if args.command == "migrate":
        migrate(settings)
    elif args.command == "usage" or args.action in ("limits", "show"):
        migrate(settings)
        try:
            result = cli_limits.run(
                args, settings, lambda action: asyncio.run(_with_uow(settings, action))
            )
        except (ValueError, ApiKeyNotFound) as exc:
            sys.exit(f"genbus-api {args.command} {getattr(args, 'action', '')}: {exc}".strip())
        _print(result)
    elif args.command == "storage":
        bucket = asyncio.run(init_bucket(StorageSettings(), wait_s=args.wait))
        _print({"bucket": bucket})
    elif args.action == "create":
        try:
            issued = create_key(
                settings, user_id=args.user, name=args.name, admin=args.admin, tier=args.tier
            )
        except ValueError as exc:
            sys.exit(f"genbus-api keys create: {exc}")
        _print({**_public(issued.key), "key": issued.secret})
    elif args.action == "list":
        migrate(settings)
        keys = asyncio.run(_with_uow(settings, lambda uow: list_api_keys(uow, user_id=args.user)))
        _print([_public(k) for k in keys])
    elif args.action == "revoke":
        try:
            key_id = UUID(args.key_id)
        except ValueError:
            sys.exit(f"genbus-api keys revoke: not a key id: {args.key_id!r}")
        migrate(settings)
        try:
            key = asyncio.run(
                _with_uow(settings, lambda uow: revoke_api_key(uow, key_id, now=datetime.now(UTC)))
            )
        except ApiKeyNotFound as exc:
            sys.exit(f"genbus-api keys revoke: {exc}")
        _print(_public(key))


async def init_bucket(storage: StorageSettings, *, wait_s: float) -> str:
    """Create the bucket unless it exists, retrying while the server starts."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait_s
    while True:
        try:
            async with ObjectStore(storage) as store:
                await store.ensure_bucket()
            return storage.bucket
        except StorageError:
            if loop.time() >= give_up:
                raise
            await asyncio.sleep(1.0)


async def _with_uow(settings: ApiSettings, action: Any) -> Any:
    engine = create_engine(
        settings.database_url, pool_size=1, max_overflow=0, timeouts=settings.db_timeouts()
    )
    try:
        return await action(SqlUnitOfWork(engine, outbox, TOPOLOGY))
    finally:
        await engine.dispose()


def _public(key: ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "user_id": key.user_id,
        "name": key.name,
        "admin": key.admin,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "tier": key.tier,
        "overrides": key.overrides.as_json() if key.overrides is not None else {},
    }


def _print(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()
