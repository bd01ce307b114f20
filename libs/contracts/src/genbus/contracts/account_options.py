"""The admin API's account fields as command-line options, for both account CLIs.

`genbus accounts` (over the admin API) and `genbus-dispatcher accounts` (on the database) build
their `add` and `update` options here from `ACCOUNT_FIELDS`: the same fields, spelled the same,
and `--clear` offers exactly what an update may clear. A credential is named by the environment
variable holding it (`--credential NAME=ENV_VAR`), never given on the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence
from typing import Any

from genbus.contracts.admin_accounts import ACCOUNT_FIELDS, AccountField, FieldKind, clearable

CREDENTIAL_DEST = "credential"
CLEAR_DEST = "clear"
_METAVARS = {FieldKind.INTEGER: "N", FieldKind.URL: "URL"}


def add_account_options(
    parser: argparse.ArgumentParser,
    *,
    update: bool,
    fields: Sequence[AccountField] = ACCOUNT_FIELDS,
    omit: Collection[str] = (),
) -> None:
    """An option per field (but those in `omit`): a create's required ones are required; an
    update offers only the updatable ones, every one optional, plus `--clear FIELD`."""
    for field in fields:
        if field.name in omit or (update and not field.updatable):
            continue
        required = field.required and not update
        if field.kind is FieldKind.CREDENTIALS:
            note = "; replaces the whole set" if update else ""
            parser.add_argument(
                "--credential",
                dest=CREDENTIAL_DEST,
                action="append",
                default=[],
                required=required,
                metavar="NAME=ENV_VAR",
                help=f"credential NAME from environment variable ENV_VAR (repeatable{note})",
            )
            continue
        parser.add_argument(
            field.option,
            dest=field.name,
            type=int if field.kind is FieldKind.INTEGER else str,
            required=required,
            metavar=_metavar(field),
            help=field.help,
        )
    if update:
        parser.add_argument(
            "--clear",
            dest=CLEAR_DEST,
            action="append",
            default=[],
            choices=[name for name in clearable(fields) if name not in omit],
            help="reset a field to not set (repeatable)",
        )


def account_values(
    args: argparse.Namespace, fields: Sequence[AccountField] = ACCOUNT_FIELDS
) -> dict[str, Any]:
    """The fields given on the command line, and those cleared (as None); not credentials."""
    values: dict[str, Any] = {name: None for name in getattr(args, CLEAR_DEST, [])}
    for field in fields:
        value = getattr(args, field.name, None)
        if field.kind is FieldKind.CREDENTIALS or value is None:
            continue
        values[field.name] = split_names(value) if field.kind is FieldKind.NAMES else value
    return values


def _metavar(field: AccountField) -> str:
    if field.kind is FieldKind.NAMES:
        return f"{field.item.upper()}[,...]"
    return _METAVARS.get(field.kind) or field.option.lstrip("-").upper().replace("-", "_")


def split_names(value: str) -> list[str]:
    """`a, b,,c` → ["a", "b", "c"]."""
    return [item.strip() for item in value.split(",") if item.strip()]
