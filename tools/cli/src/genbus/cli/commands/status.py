"""`genbus status`: what the live system is doing, at a glance.

Queue depth and oldest waiting job per provider and in-flight per account come from the
dispatcher's admin API; consumer lag and dead letters from JetStream (NATS_URL).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from nats.js import JetStreamContext
from rich.console import Group

from genbus.cli.client import AdminError
from genbus.cli.context import Context
from genbus.cli.jetstream import with_jetstream
from genbus.cli.output import console_for, print_json, table
from genbus.runtime.stream_state import consumer_states, dead_letter_count


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="queues, slots, consumer lag, dead letters")
    parser.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=float,
        metavar="SECONDS",
        help="redraw every SECONDS (default 2) until Ctrl-C",
    )
    parser.set_defaults(run=_status)


async def _streams(js: JetStreamContext) -> dict[str, Any]:
    consumers = await consumer_states(js)
    dead = await dead_letter_count(js)
    return {"consumers": consumers, "dead_letters": dead}


def _breaker(row: Mapping[str, Any]) -> object:
    """`open until <time>`, `half_open` or `closed` (None from a dispatcher without a breaker)."""
    state, until = row.get("breaker"), row.get("breaker_open_until")
    return f"open until {until}" if state == "open" and until else state


def _report(ctx: Context) -> dict[str, Any]:
    dispatch = ctx.client.get("/admin/status")
    streams = with_jetstream(ctx.env, _streams)
    return {"dispatch": dispatch, **streams}


def _render(report: Mapping[str, Any], boxed: bool) -> Group:
    dispatch = report["dispatch"]
    queues = table(
        dispatch.get("queues", []),
        (
            ("PROVIDER", lambda q: q.get("provider_id")),
            ("QUEUED", lambda q: q.get("queued")),
            ("DUE", lambda q: q.get("due")),
            ("OLDEST_WAIT_S", lambda q: q.get("oldest_waiting_s")),
        ),
        title="QUEUES",
        boxed=boxed,
    )
    in_flight = table(
        dispatch.get("in_flight", []),
        (
            ("ACCOUNT", lambda a: a.get("account_id")),
            ("PROVIDER", lambda a: a.get("provider_id")),
            ("STATUS", lambda a: a.get("status")),
            ("BREAKER", _breaker),
            ("IN_FLIGHT", lambda a: f"{a.get('busy')}/{a.get('max_concurrent')}"),
        ),
        title="IN FLIGHT",
        boxed=boxed,
    )
    consumers = table(
        report["consumers"],
        (
            ("CONSUMER", lambda c: c.get("consumer")),
            ("PENDING", lambda c: c.get("pending")),
            ("UNACKED", lambda c: c.get("unacked")),
            ("REDELIVERED", lambda c: c.get("redelivered")),
        ),
        title="CONSUMERS",
        boxed=boxed,
    )
    return Group(queues, in_flight, consumers, f"DEAD LETTERS  {report['dead_letters']}")


def _status(ctx: Context, args: Any) -> int:
    if args.watch is not None:
        return _watch(ctx, args.watch)
    report = _report(ctx)
    if ctx.as_json:
        print_json(report, ctx.out)
    else:
        console = console_for(ctx.out)
        console.print(_render(report, console.is_terminal))
    return 0


def _watch(ctx: Context, interval: float) -> int:
    """Redraw every `interval` seconds until Ctrl-C; an unreachable server is shown, not fatal."""
    console = console_for(ctx.out)
    try:
        while True:
            try:
                shown: Any = _render(_report(ctx), console.is_terminal)
            except AdminError as exc:
                shown = f"genbus: {exc} (retrying every {interval:g}s)"
            console.clear()
            console.print(f"genbus status, every {interval:g}s (Ctrl-C to stop)")
            console.print(shown)
            time.sleep(interval)  # the refresh period of a display, not a synchronisation
    except KeyboardInterrupt:
        return 0
