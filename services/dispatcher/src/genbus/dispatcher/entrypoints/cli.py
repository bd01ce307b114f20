"""`genbus-dispatcher`: serve, migrate, and manage provider accounts. Never prints a secret."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from genbus.dispatcher.adapters.accounts_store import list_accounts, upsert_account
from genbus.dispatcher.bootstrap import cipher_from, serve
from genbus.dispatcher.config import DispatcherSettings
from genbus.runtime.db import create_engine
from genbus.runtime.logging import configure_logging
from genbus.runtime.migrations import upgrade_to_head
from genbus.runtime.service import run_service

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrate(settings: DispatcherSettings) -> None:
    upgrade_to_head(MIGRATIONS, settings.database_url, "dispatcher")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genbus-dispatcher")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="migrate, then run the dispatcher (default)")
    sub.add_parser("migrate", help="migrate the dispatcher schema and exit")
    accounts = sub.add_parser("accounts", help="manage provider accounts").add_subparsers(
        dest="action", required=True
    )
    add = accounts.add_parser("add", help="create an account, or update the one with this label")
    add.add_argument("--provider", required=True)
    add.add_argument("--label", required=True)
    add.add_argument("--max-concurrent", type=int, required=True)
    add.add_argument("--priority", type=int, default=0)
    add.add_argument("--base-url")
    add.add_argument("--operations", help="comma-separated; default: all of the provider's")
    add.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="NAME=ENV_VAR",
        help="read credential NAME from environment variable ENV_VAR (never from argv)",
    )
    accounts.add_parser("list", help="list accounts (no credentials)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = DispatcherSettings()
    configure_logging("dispatcher", settings.log_format, settings.log_level)
    if args.command in (None, "serve"):
        migrate(settings)
        run_service(lambda stop: serve(settings, stop))
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "accounts" and args.action == "add":
        asyncio.run(_add_account(settings, args))
    elif args.command == "accounts" and args.action == "list":
        asyncio.run(_list_accounts(settings))


async def _add_account(settings: DispatcherSettings, args: argparse.Namespace) -> None:

    credentials: dict[str, str] = {}
    for spec in args.credential:
        name, _, env_var = spec.partition("=")
        value = os.environ.get(env_var or name.upper())
        if not value:
            sys.exit(f"credential {name!r}: environment variable {env_var!r} is empty")
        credentials[name] = value
    ciphertext = cipher_from(settings).encrypt(credentials)
    operations = [o.strip() for o in args.operations.split(",")] if args.operations else None
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            account_id = await upsert_account(
                conn,
                provider_id=args.provider,
                label=args.label,
                credentials_ciphertext=ciphertext,
                max_concurrent=args.max_concurrent,
                priority=args.priority,
                base_url=args.base_url,
                operations=operations,
            )
    finally:
        await engine.dispose()
    print(json.dumps({"id": account_id, "label": args.label, "provider_id": args.provider}))


async def _list_accounts(settings: DispatcherSettings) -> None:
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            accounts = await list_accounts(conn)
    finally:
        await engine.dispose()
    for account in accounts:
        print(json.dumps(account.as_dict()))
