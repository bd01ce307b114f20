"""`genbus deadletters list|replay`: messages no consumer could process, and their replay.

`list` reads JetStream (NATS_URL). A replay goes through the dispatcher's admin API, so that it
is in the audit log: it publishes the message again on its original subject (every consumer of
that subject sees it; they are idempotent) and removes it from the dead-letter stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from genbus.cli.context import Context
from genbus.cli.jetstream import with_jetstream
from genbus.cli.output import Column, print_json, print_table
from genbus.runtime.deadletter import list_dead_letters

COLUMNS: Sequence[Column] = (
    ("SEQ", lambda d: d.get("sequence")),
    ("CONSUMER", lambda d: d.get("consumer")),
    ("SUBJECT", lambda d: d.get("subject")),
    ("DELIVERIES", lambda d: d.get("deliveries")),
    ("AT", lambda d: d.get("dead_lettered_at")),
    ("REASON", lambda d: str(d.get("reason", ""))[:120]),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("deadletters", help="dead-lettered messages")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    list_ = actions.add_parser("list", help="list dead letters, oldest first")
    list_.add_argument("--limit", type=int, default=1000)
    list_.set_defaults(run=_list)
    replay = actions.add_parser("replay", help="publish dead letters again on their subject")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("sequence", nargs="?", type=int, help="the dead letter's SEQ")
    which.add_argument("--all", action="store_true", help="every dead letter")
    replay.set_defaults(run=_replay)


def _list(ctx: Context, args: Any) -> int:
    letters = with_jetstream(ctx.env, lambda js: list_dead_letters(js, args.limit))
    rows = [letter.summary() for letter in letters]
    if ctx.as_json:
        print_json(rows, ctx.out)
    else:
        print_table(rows, COLUMNS, ctx.out)
    return 0


def _replay(ctx: Context, args: Any) -> int:
    """Through the dispatcher's admin API, so that every replay is in the audit log."""
    if args.all:
        sequences = [d.sequence for d in with_jetstream(ctx.env, list_dead_letters)]
    else:
        sequences = [args.sequence]
    rows: list[dict[str, Any]] = []
    # The bar goes to stderr: stdout stays the result (a line per replay, or JSON).
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=ctx.err),
        disable=not args.all,
    ) as progress:
        task = progress.add_task("replay", total=len(sequences))
        for sequence in sequences:
            replayed = ctx.client.post(f"/admin/deadletters/{sequence}/replay")
            rows.append({"sequence": replayed["sequence"], "subject": replayed["subject"]})
            progress.advance(task)
    if ctx.as_json:
        print_json(rows, ctx.out)
    else:
        for row in rows:
            ctx.out.write(f"replayed {row['sequence']} on {row['subject']}\n")
    return 0
