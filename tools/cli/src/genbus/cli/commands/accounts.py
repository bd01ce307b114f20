"""`genbus accounts add|list|update|disable|enable`: provider accounts, never their secrets.

Credentials are read from environment variables named on the command line
(`--credential api_key=PIXVERSE_KEY`), never from argv values, and are never shown: the API
returns only their names.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from genbus.cli.client import AdminError
from genbus.cli.context import Context
from genbus.cli.output import Column, print_json, print_table
from genbus.contracts.account_options import account_values, add_account_options

COLUMNS: Sequence[Column] = (
    ("ID", lambda a: a.get("id")),
    ("PROVIDER", lambda a: a.get("provider_id")),
    ("LABEL", lambda a: a.get("label")),
    ("STATUS", lambda a: a.get("status")),
    ("BUSY", lambda a: f"{a.get('busy')}/{a.get('max_concurrent')}"),
    ("PRIO", lambda a: a.get("priority")),
    ("TODAY", lambda a: f"{a.get('used_today')}/{a.get('daily_cap') or '-'}"),
    ("CREDITS", lambda a: a.get("credits")),
    ("COOLDOWN_UNTIL", lambda a: a.get("cooldown_until")),
    ("BREAKER", lambda a: (a.get("breaker") or {}).get("state")),
    ("BREAKER_UNTIL", lambda a: (a.get("breaker") or {}).get("open_until")),
    ("CREDENTIALS", lambda a: a.get("credential_names")),
    ("REASON", lambda a: a.get("status_reason")),
)

#: Keys never printed, whatever a server sends.
_SECRET_KEYS = frozenset({"credentials", "credentials_ciphertext"})


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("accounts", help="provider accounts")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="create an account")
    add_account_options(add, update=False)
    add.set_defaults(run=_add)

    list_ = actions.add_parser("list", help="list accounts")
    list_.set_defaults(run=_list)

    update = actions.add_parser("update", help="change an account's settings or credentials")
    update.add_argument("account_id")
    add_account_options(update, update=True)
    update.set_defaults(run=_update)

    disable = actions.add_parser("disable", help="stop using an account")
    disable.add_argument("account_id")
    disable.add_argument("--reason", required=True)
    disable.set_defaults(run=_disable)

    enable = actions.add_parser("enable", help="use an account again (clears its cooldown)")
    enable.add_argument("account_id")
    enable.set_defaults(run=_enable)


def credentials_from_env(specs: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """`NAME=ENV_VAR` → {NAME: $ENV_VAR}. `NAME` alone reads $NAME in upper case."""
    values: dict[str, str] = {}
    for spec in specs:
        name, _, env_var = spec.partition("=")
        name, env_var = name.strip(), (env_var.strip() or name.strip().upper())
        if not name:
            raise AdminError("invalid_credential", f"{spec!r} is not NAME=ENV_VAR")
        value = env.get(env_var, "")
        if not value:
            message = f"credential {name!r}: environment variable {env_var} is empty"
            raise AdminError("invalid_credential", message)
        values[name] = value
    return values


def _add(ctx: Context, args: argparse.Namespace) -> int:
    body = account_values(args)
    body["credentials"] = credentials_from_env(args.credential, ctx.env)
    _show(ctx, [ctx.client.post("/admin/accounts", body)])
    return 0


def _list(ctx: Context, _: argparse.Namespace) -> int:
    _show(ctx, ctx.client.get("/admin/accounts")["accounts"], many=True)
    return 0


def _update(ctx: Context, args: argparse.Namespace) -> int:
    body = account_values(args)
    if args.credential:
        body["credentials"] = credentials_from_env(args.credential, ctx.env)
    if not body:
        raise AdminError("nothing_to_update", "give at least one field to change")
    _show(ctx, [ctx.client.patch(_path(args.account_id), body)])
    return 0


def _disable(ctx: Context, args: argparse.Namespace) -> int:
    account = ctx.client.post(f"{_path(args.account_id)}/disable", {"reason": args.reason})
    _show(ctx, [account])
    return 0


def _enable(ctx: Context, args: argparse.Namespace) -> int:
    _show(ctx, [ctx.client.post(f"{_path(args.account_id)}/enable")])
    return 0


def _path(account_id: str) -> str:
    return f"/admin/accounts/{quote(account_id, safe='')}"


def _show(ctx: Context, accounts: list[dict[str, Any]], *, many: bool = False) -> None:
    public = [{k: v for k, v in a.items() if k not in _SECRET_KEYS} for a in accounts]
    if ctx.as_json:
        print_json(public if many else public[0], ctx.out)
    else:
        print_table(public, COLUMNS, ctx.out)
