"""`genbus deadletters list|replay`: messages no consumer could process, and their replay.

A replay publishes the message again on its original subject (every consumer of that subject
sees it; they are idempotent) and removes it from the dead-letter stream. Reads NATS_URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nats.js import JetStreamContext
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from genbus.cli.context import Context
from genbus.cli.jetstream import with_jetstream
from genbus.cli.output import Column, print_json, print_table
from genbus.runtime.deadletter import DeadLetter, list_dead_letters, replay_dead_letter

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
    async def replay(js: JetStreamContext) -> list[DeadLetter]:
        if not args.all:
            return [await replay_dead_letter(js, args.sequence)]
        sequences = [letter.sequence for letter in await list_dead_letters(js)]
        done: list[DeadLetter] = []
        # The bar goes to stderr: stdout stays the result (a line per replay, or JSON).
        with Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=ctx.err),
            transient=False,
        ) as progress:
            task = progress.add_task("replay", total=len(sequences))
            for sequence in sequences:
                done.append(await replay_dead_letter(js, sequence))
                progress.advance(task)
        return done

    replayed = with_jetstream(ctx.env, replay)
    rows = [{"sequence": d.sequence, "subject": d.original_subject} for d in replayed]
    if ctx.as_json:
        print_json(rows, ctx.out)
    else:
        for row in rows:
            ctx.out.write(f"replayed {row['sequence']} on {row['subject']}\n")
    return 0
