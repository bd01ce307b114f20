"""Stream and durable consumer definitions, provisioned explicitly (create or update) at start-up.

A durable consumer re-created with a changed config silently keeps its old config, so every
service provisions from these specs instead of relying on client-side implicit creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genbus.contracts.bindings import SUBJECT_ROOT, EventBinding
from genbus.contracts.events import Event

DEAD_LETTER_ROOT = "deadletter"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_s: float
    duplicate_window_s: float
    replicas: int = 1


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
)

DEAD_LETTER_STREAM = StreamSpec(
    name="GENERATIONS_DLQ",
    subjects=(f"{DEAD_LETTER_ROOT}.>",),
    max_age_s=30 * 24 * 3600,
    duplicate_window_s=20 * 60,
)


def dead_letter_subject(consumer: str, original_subject: str) -> str:
    """Where a message that `consumer` could never process is kept, with its original subject."""
    return f"{DEAD_LETTER_ROOT}.{consumer}.{original_subject}"
