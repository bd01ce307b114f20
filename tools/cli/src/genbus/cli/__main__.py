"""`genbus`: operate a running genbus through the dispatcher's admin API and JetStream.

Reads GENBUS_ADMIN_URL, GENBUS_ADMIN_TOKEN and NATS_URL; what the environment lacks comes from
`.local/connection.json`, which `make run` writes. Exit status: 0 done, 1 refused or
unreachable (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import httpx

from genbus.cli.client import DEFAULT_URL, URL_ENV, AdminClient, AdminError
from genbus.cli.commands import COMMAND_GROUPS
from genbus.cli.context import Context
from genbus.runtime.connection import env_with_facts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genbus", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--url", help=f"admin API base URL (default ${URL_ENV} or {DEFAULT_URL})")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(groups)
    return parser


def run(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run one command; returns its exit status (tests call this with their own env and I/O)."""
    args = build_parser().parse_args(argv)
    env = env_with_facts() if env is None else env
    err = err or sys.stderr
    ctx = Context(
        env=env,
        out=out or sys.stdout,
        as_json=args.json,
        connect=lambda: AdminClient.from_env(env, url=args.url, transport=transport),
        err=err,
    )
    try:
        code: int = args.run(ctx, args)
    except AdminError as exc:
        err.write(f"genbus: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last guard: one line, never a traceback
        message = " ".join(str(exc).split())[:200]
        err.write(f"genbus: unexpected error: {type(exc).__name__}: {message}\n")
        return 1
    finally:
        ctx.close()
    return code


def main() -> None:
    # asyncio warns on stderr when a TLS connection to NATS closes ("returning true from
    # eof_received() has no effect when using ssl"): noise on a tool's terminal, not a failure.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    sys.exit(run())


if __name__ == "__main__":
    main()
