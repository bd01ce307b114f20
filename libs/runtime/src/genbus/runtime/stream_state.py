"""What an operator reads of JetStream: each contract consumer's backlog, and the dead letters."""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from genbus.contracts import CONSUMERS, DEAD_LETTER_STREAM, GENERATIONS_STREAM


async def consumer_states(js: JetStreamContext) -> list[dict[str, Any]]:
    """Every consumer of the contracts: messages not yet delivered (`pending`), delivered and not
    acked (`unacked`), redelivered; one not provisioned is `missing`."""
    states: list[dict[str, Any]] = []
    for spec in CONSUMERS:
        try:
            info = await js.consumer_info(GENERATIONS_STREAM.name, spec.durable)
        except NotFoundError:
            states.append({"consumer": spec.durable, "missing": True})
            continue
        states.append(
            {
                "consumer": spec.durable,
                "pending": info.num_pending,
                "unacked": info.num_ack_pending,
                "redelivered": info.num_redelivered,
            }
        )
    return states


async def dead_letter_count(js: JetStreamContext) -> int:
    """Dead letters stored (0 before the stream exists)."""
    try:
        return (await js.stream_info(DEAD_LETTER_STREAM.name)).state.messages
    except NotFoundError:
        return 0
