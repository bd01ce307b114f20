"""`genbus audit`: the dispatcher's audit log of admin changes, newest first."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from genbus.cli.context import Context
from genbus.cli.output import Column, print_json, print_table


def _change(entry: Mapping[str, Any]) -> str:
    """The fields that differ between before and after, `field: old -> new`."""
    before, after = entry.get("before") or {}, entry.get("after") or {}
    if not before:
        return "created" if after.get("id") else ", ".join(f"{k}={v}" for k, v in after.items())
    changed = [
        f"{k}: {before.get(k)!s} -> {after.get(k)!s}"
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k) and k not in _DERIVED
    ]
    return "; ".join(changed)[:160]


#: Fields that change by themselves, not by the admin change: never shown as its effect.
_DERIVED = frozenset({"updated_at", "busy", "claimed", "submitted", "used_today", "breaker"})

COLUMNS: Sequence[Column] = (
    ("ID", lambda e: e.get("id")),
    ("AT", lambda e: e.get("at")),
    ("WHO", lambda e: e.get("actor")),
    ("WHAT", lambda e: e.get("action")),
    ("TARGET", lambda e: e.get("target")),
    ("CHANGE", _change),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="the audit log of admin changes")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--target", help="only changes to this account id")
    parser.set_defaults(run=_list)


def _list(ctx: Context, args: argparse.Namespace) -> int:
    query = {"limit": args.limit, **({"target": args.target} if args.target else {})}
    entries = ctx.client.get(f"/admin/audit?{urlencode(query)}")["entries"]
    if ctx.as_json:
        print_json(entries, ctx.out)
    else:
        print_table(entries, COLUMNS, ctx.out)
    return 0
