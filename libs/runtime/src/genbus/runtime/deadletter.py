"""The dead-letter stream: messages that can never be processed, kept with why; replayable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from genbus.contracts import DEAD_LETTER_STREAM, GENERATIONS_STREAM, dead_letter_subject

REASON_HEADER = "Genbus-Dead-Letter-Reason"
CONSUMER_HEADER = "Genbus-Dead-Letter-Consumer"
SUBJECT_HEADER = "Genbus-Original-Subject"
SEQUENCE_HEADER = "Genbus-Original-Sequence"
DELIVERIES_HEADER = "Genbus-Deliveries"
DEAD_AT_HEADER = "Genbus-Dead-Lettered-At"
_OWN_HEADERS = {
    REASON_HEADER,
    CONSUMER_HEADER,
    SUBJECT_HEADER,
    SEQUENCE_HEADER,
    DELIVERIES_HEADER,
    DEAD_AT_HEADER,
    "Nats-Msg-Id",
}


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    consumer: str
    original_subject: str
    reason: str
    deliveries: int
    dead_lettered_at: str
    payload: bytes
    original_headers: dict[str, str]

    def summary(self) -> dict[str, object]:
        return {
            "sequence": self.sequence,
            "consumer": self.consumer,
            "subject": self.original_subject,
            "reason": self.reason,
            "deliveries": self.deliveries,
            "dead_lettered_at": self.dead_lettered_at,
            "payload": self.payload.decode(errors="replace")[:500],
        }


async def dead_letter(
    js: JetStreamContext, consumer: str, msg: Msg, reason: str, deliveries: int
) -> None:
    """Copy `msg` to the dead-letter stream with why and where it came from."""
    stream_seq = msg.metadata.sequence.stream if msg.reply else 0
    headers = dict(msg.headers or {})
    original_msg_id = headers.pop("Nats-Msg-Id", None)
    if original_msg_id:
        headers["Genbus-Original-Msg-Id"] = original_msg_id
    headers.update(
        {
            REASON_HEADER: reason[:1000],
            CONSUMER_HEADER: consumer,
            SUBJECT_HEADER: msg.subject,
            SEQUENCE_HEADER: str(stream_seq),
            DELIVERIES_HEADER: str(deliveries),
            DEAD_AT_HEADER: datetime.now(UTC).isoformat(),
            # One dead letter per (consumer, original message), however often this is retried.
            "Nats-Msg-Id": f"dlq:{consumer}:{stream_seq}",
        }
    )
    await js.publish(
        dead_letter_subject(consumer, msg.subject),
        msg.data,
        stream=DEAD_LETTER_STREAM.name,
        headers=headers,
    )


def _parse(msg: Msg) -> DeadLetter:
    headers = msg.headers or {}
    return DeadLetter(
        sequence=msg.metadata.sequence.stream,
        consumer=headers.get(CONSUMER_HEADER, ""),
        original_subject=headers.get(SUBJECT_HEADER, ""),
        reason=headers.get(REASON_HEADER, ""),
        deliveries=int(headers.get(DELIVERIES_HEADER, "0") or 0),
        dead_lettered_at=headers.get(DEAD_AT_HEADER, ""),
        payload=msg.data,
        original_headers={k: v for k, v in headers.items() if k not in _OWN_HEADERS},
    )


async def list_dead_letters(js: JetStreamContext, limit: int = 1000) -> list[DeadLetter]:
    """Every dead letter still stored, oldest first (an ordered read; nothing is acked)."""
    try:
        info = await js.stream_info(DEAD_LETTER_STREAM.name)
    except NotFoundError:
        return []
    if info.state.messages == 0:
        return []
    sub = await js.subscribe(
        f"{DEAD_LETTER_STREAM.subjects[0]}",
        stream=DEAD_LETTER_STREAM.name,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    letters: list[DeadLetter] = []
    try:
        while len(letters) < limit:
            msg = await sub.next_msg(timeout=2.0)
            letters.append(_parse(msg))
            if msg.metadata.num_pending == 0:
                break
    except TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return letters


async def replay_dead_letter(js: JetStreamContext, sequence: int) -> DeadLetter:
    """Publish a dead letter again on its original subject and remove it from the DLQ."""
    raw = await js.get_msg(DEAD_LETTER_STREAM.name, sequence)
    headers = dict(raw.headers or {})
    letter = DeadLetter(
        sequence=sequence,
        consumer=headers.get(CONSUMER_HEADER, ""),
        original_subject=headers.get(SUBJECT_HEADER, ""),
        reason=headers.get(REASON_HEADER, ""),
        deliveries=int(headers.get(DELIVERIES_HEADER, "0") or 0),
        dead_lettered_at=headers.get(DEAD_AT_HEADER, ""),
        payload=raw.data or b"",
        original_headers={k: v for k, v in headers.items() if k not in _OWN_HEADERS},
    )
    replay_headers = dict(letter.original_headers)
    replay_headers["Genbus-Replayed-From"] = f"{DEAD_LETTER_STREAM.name}:{sequence}"
    # A fresh message id: the original one may still be inside the duplicate window.
    replay_headers["Nats-Msg-Id"] = f"replay:{DEAD_LETTER_STREAM.name}:{sequence}"
    await js.publish(
        letter.original_subject,
        letter.payload,
        stream=GENERATIONS_STREAM.name,
        headers=replay_headers,
    )
    await js.delete_msg(DEAD_LETTER_STREAM.name, sequence)
    return letter
