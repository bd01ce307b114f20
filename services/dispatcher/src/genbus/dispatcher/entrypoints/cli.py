"""`genbus-dispatcher`: serve, migrate, and manage provider accounts. Never prints a secret.

The `accounts` commands work on the database directly (for bootstrap, before the HTTP server
is up); with the dispatcher running, `genbus accounts ...` does the same through its admin API.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from genbus.contracts.account_options import account_values, add_account_options
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.service_layer import accounts, audit
from genbus.dispatcher.service_layer.unit_of_work import SqlUnitOfWork, UowFactory
from genbus.providers import Credentials
from genbus.runtime.connection import fill_environment
from genbus.runtime.db import create_engine
from genbus.runtime.failures import one_line_failure
from genbus.runtime.logging import configure_logging

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrate(settings: DispatcherSettings) -> None:
    from genbus.runtime.migrations import upgrade_to_head

    upgrade_to_head(MIGRATIONS, settings.database_url, "dispatcher")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genbus-dispatcher")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="migrate, then run the dispatcher (default)")
    sub.add_parser("migrate", help="migrate the dispatcher schema and exit")
    sub.add_parser("error-table", help="print README's table of provider errors and reactions")
    sub.add_parser("in-doubt-table", help="print README's table of in-doubt submissions")
    accounts_cmd = sub.add_parser("accounts", help="manage provider accounts (database)")
    actions = accounts_cmd.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", help="create an account, or update the one with this label")
    add_account_options(add, update=False, omit=accounts.NOT_SEEDED)

    actions.add_parser("list", help="list accounts, one JSON object a line (no credentials)")

    update = actions.add_parser("update", help="change an account's settings or credentials")
    update.add_argument("account_id")
    add_account_options(update, update=True)

    disable = actions.add_parser("disable", help="stop using an account")
    disable.add_argument("account_id")
    disable.add_argument("--reason", required=True)
    enable = actions.add_parser("enable", help="use an account again (clears its cooldown)")
    enable.add_argument("account_id")
    actions.add_parser(
        "rotate-keys", help="re-encrypt every account's credentials with the first key"
    )
    audit_cmd = sub.add_parser("audit", help="the audit log of admin changes (database)")
    audit_actions = audit_cmd.add_subparsers(dest="action", required=True)
    audit_list = audit_actions.add_parser("list", help="newest first, one JSON object a line")
    audit_list.add_argument("--limit", type=int, default=100)
    audit_list.add_argument("--target", help="only changes to this account id")
    return parser


def credentials_from_env(specs: Sequence[str]) -> Credentials:
    """`NAME=ENV_VAR` specs → credentials read from the environment (NAME alone: ENV NAME)."""
    values: dict[str, str] = {}
    for spec in specs:
        name, _, env_var = spec.partition("=")
        env_var = env_var or name.upper()
        value = os.environ.get(env_var)
        if not value:
            sys.exit(f"credential {name!r}: environment variable {env_var!r} is empty")
        values[name] = value
    return Credentials(values)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    # Heavy imports (broker, migrations, submission path) happen only in the commands that need
    # them, so account commands start quickly.
    if args.command in ("error-table", "in-doubt-table"):
        from genbus.dispatcher.service_layer.error_table import error_table, in_doubt_table

        print(error_table() if args.command == "error-table" else in_doubt_table(), end="")
        return
    if args.command in ("accounts", "audit", "migrate"):
        fill_environment()  # `make run`'s .local/connection.json fills what the env lacks
    try:
        settings = DispatcherSettings()
    except ValidationError as exc:
        sys.exit(f"genbus-dispatcher: bad settings: {_settings_problem(exc)}")
    # Logs share stdout with the commands' JSON output: only warnings for the account commands.
    level = "WARNING" if args.command == "accounts" else settings.log_level
    configure_logging("dispatcher", settings.log_format, level)
    if args.command in (None, "serve"):
        from genbus.dispatcher.bootstrap import serve
        from genbus.runtime.service import run_service

        migrate(settings)
        run_service(lambda stop: serve(settings, stop))
    elif args.command == "migrate":
        migrate(settings)
    elif args.command in ("accounts", "audit"):
        try:
            factory = _audit_list if args.command == "audit" else _ACTIONS[args.action]
            result = asyncio.run(_with_engine(settings, factory(settings, args)))
        except accounts.AccountError as exc:
            sys.exit(f"{exc.code}: {exc}")
        except Exception as exc:
            failure = one_line_failure(exc, "Postgres", settings.database_url)
            sys.exit(f"genbus-dispatcher: {failure}")
        for line in result:
            print(json.dumps(line))


Action = Callable[[UowFactory], Awaitable[list[dict[str, Any]]]]


def cli_actor() -> str:
    """Who runs an account command, as the audit log names them."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _settings_problem(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
    )


def _add(settings: DispatcherSettings, args: argparse.Namespace) -> Action:
    new = accounts.NewAccount(
        **account_values(args), credentials=credentials_from_env(args.credential)
    )

    async def run(uow: UowFactory) -> list[dict[str, Any]]:
        view = await accounts.seed_account(
            uow(),
            settings.credentials_cipher(),
            new,
            actor=cli_actor(),
            policy=settings.base_url_policy(),
        )
        return [view.as_dict()]

    return run


def _list(_: DispatcherSettings, __: argparse.Namespace) -> Action:
    async def run(uow: UowFactory) -> list[dict[str, Any]]:
        return [view.as_dict() for view in await accounts.list_accounts(uow())]

    return run


def _update(settings: DispatcherSettings, args: argparse.Namespace) -> Action:
    changes = accounts.AccountChanges(
        values=account_values(args),
        credentials=credentials_from_env(args.credential) if args.credential else None,
    )

    async def run(uow: UowFactory) -> list[dict[str, Any]]:
        cipher = settings.credentials_cipher()
        view = await accounts.update_account(
            uow(),
            cipher,
            args.account_id,
            changes,
            actor=cli_actor(),
            policy=settings.base_url_policy(),
        )
        return [view.as_dict()]

    return run


def _disable(_: DispatcherSettings, args: argparse.Namespace) -> Action:
    async def run(uow: UowFactory) -> list[dict[str, Any]]:
        view = await accounts.disable_account(
            uow(), args.account_id, args.reason, actor=cli_actor()
        )
        return [view.as_dict()]

    return run


def _enable(_: DispatcherSettings, args: argparse.Namespace) -> Action:
    async def run(uow: UowFactory) -> list[dict[str, Any]]:
        return [
            (await accounts.enable_account(uow(), args.account_id, actor=cli_actor())).as_dict()
        ]

    return run


def _rotate(settings: DispatcherSettings, _: argparse.Namespace) -> Action:
    async def run(uow: UowFactory) -> list[dict[str, Any]]:
        report = await accounts.rotate_credentials(
            uow(), settings.credentials_cipher(), actor=cli_actor()
        )
        return [report.as_dict()]

    return run


def _audit_list(_: DispatcherSettings, args: argparse.Namespace) -> Action:
    async def run(uow: UowFactory) -> list[dict[str, Any]]:
        entries = await audit.list_entries(uow(), limit=args.limit, target=args.target)
        return [entry.as_dict() for entry in entries]

    return run


_ACTIONS: dict[str, Callable[[DispatcherSettings, argparse.Namespace], Action]] = {
    "add": _add,
    "list": _list,
    "update": _update,
    "disable": _disable,
    "enable": _enable,
    "rotate-keys": _rotate,
}


async def _with_engine(settings: DispatcherSettings, action: Action) -> list[dict[str, Any]]:
    engine = create_engine(
        settings.database_url, pool_size=1, max_overflow=0, timeouts=settings.db_timeouts()
    )
    try:
        return await action(lambda: SqlUnitOfWork(engine))
    finally:
        await engine.dispose()
