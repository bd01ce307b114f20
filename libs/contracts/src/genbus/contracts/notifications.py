"""Notifications: tiny core-NATS messages (not JetStream, not durable) that say "look again".

They carry no state. A receiver that misses one loses only latency: the state they point at is
durable elsewhere (for `GENERATION_CHANGED`, the api's `generation_events` table), and
receivers re-read it periodically anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field

from genbus.contracts.common import ContractModel

M = TypeVar("M", bound=BaseModel)

NOTIFY_ROOT = "genbus.notify"


@dataclass(frozen=True)
class NotificationBinding(Generic[M]):
    """One notification type and its core-NATS subject. The only way to name that subject."""

    name: str
    model: type[M]

    @property
    def subject(self) -> str:
        return f"{NOTIFY_ROOT}.{self.name}"


class GenerationChanged(ContractModel):
    """A generation's status changed: its new state is `api.generation_events` row `event_seq`."""

    user_id: str = Field(min_length=1, max_length=128)
    generation_id: UUID
    event_seq: int = Field(ge=1)


#: Published by every api replica after committing a generation change; every replica subscribes
#: to wake the live-status (SSE) streams of that user.
GENERATION_CHANGED = NotificationBinding("generation_changed", GenerationChanged)
