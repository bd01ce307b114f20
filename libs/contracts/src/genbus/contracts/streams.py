"""Stream and durable consumer definitions, provisioned explicitly (create or update) at start-up.

A durable consumer re-created with a changed config silently keeps its old config, so every
service provisions from these specs instead of relying on client-side implicit creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genbus.contracts.bindings import SUBJECT_ROOT, EventBinding
from genbus.contracts.events import Event

DEAD_LETTER_ROOT = "deadletter"


GiB = 1024**3


@dataclass(frozen=True)
class StreamSpec:
    """A limits-based stream, bounded in age and in size.

    Past `max_age_s`, `max_bytes` or `max_msgs` (-1: no bound) JetStream discards the oldest
    messages (`discard="old"`): publishing never fails because the stream is full, so producers
    (the outbox relays) keep going under overload. The price: a message still unconsumed when it
    is pushed out is gone for its consumers. A consumer that falls behind by more than the bound
    loses the oldest messages it had not processed (its durable skips ahead to the stream's
    first message); for the work queue this means generations that only the deadline sweeps
    (the dispatcher's and the api's reconcilers) then end. Size the bound to hold a few hours of
    peak traffic (`GENBUS_STREAM_MAX_BYTES`, `GENBUS_DLQ_MAX_BYTES`).
    """

    name: str
    subjects: tuple[str, ...]
    max_age_s: float
    duplicate_window_s: float
    replicas: int = 1
    max_bytes: int = -1
    max_msgs: int = -1
    discard: Literal["old", "new"] = "old"


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer of one event binding.

    `max_deliver` bounds redeliveries of one message; a message that reaches it goes to the
    dead-letter stream. `max_ack_pending` caps unacked messages across all replicas.
    """

    durable: str
    binding: EventBinding[Event]
    service: str
    ack_wait_s: float = 5.0
    max_deliver: int = 20
    max_ack_pending: int = 1000
    retry_delays_s: tuple[float, ...] = field(default=(0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0))

    @property
    def filter_subject(self) -> str:
        return self.binding.wildcard

    def retry_delay(self, num_delivered: int) -> float:
        """Delay before redelivering after the `num_delivered`-th delivery failed."""
        index = min(max(num_delivered - 1, 0), len(self.retry_delays_s) - 1)
        return self.retry_delays_s[index]


GENERATIONS_STREAM = StreamSpec(
    name="GENERATIONS",
    subjects=(f"{SUBJECT_ROOT}.>",),
    max_age_s=7 * 24 * 3600,
    # Longer than any crash-and-restart, so a republished event is dropped by JetStream itself.
    duplicate_window_s=20 * 60,
    # A generation's events take a few kB: 4 GiB holds around a million generations, hours of
    # peak traffic. With the dead letters' bound it must fit the server's JetStream file store
    # (NATS reserves `max_bytes` up front; the k8s NATS volume is 10Gi, 75 % of it usable).
    max_bytes=4 * GiB,
)

DEAD_LETTER_STREAM = StreamSpec(
    name="GENERATIONS_DLQ",
    subjects=(f"{DEAD_LETTER_ROOT}.>",),
    max_age_s=30 * 24 * 3600,
    duplicate_window_s=20 * 60,
    max_bytes=GiB // 2,
)


def dead_letter_subject(consumer: str, original_subject: str) -> str:
    """Where a message that `consumer` could never process is kept, with its original subject."""
    return f"{DEAD_LETTER_ROOT}.{consumer}.{original_subject}"
