"""The binding of each event type to its subjects: `generations.<event>.<provider_id>`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from genbus.contracts.common import PROVIDER_ID_PATTERN
from genbus.contracts.events import (
    Event,
    GenerationCancelRequested,
    GenerationCompleted,
    GenerationRequested,
    GenerationSubmitted,
    GenerationWaiting,
)

E = TypeVar("E", bound=Event, covariant=True)

SUBJECT_ROOT = "generations"
_PROVIDER_ID = re.compile(PROVIDER_ID_PATTERN)


@dataclass(frozen=True)
class EventBinding(Generic[E]):
    """One event type, its model and its subject family. The only way to name a subject."""

    name: str
    model: type[E]

    @property
    def subject_prefix(self) -> str:
        return f"{SUBJECT_ROOT}.{self.name}"

    @property
    def wildcard(self) -> str:
        """The filter that matches this event for every provider."""
        return f"{self.subject_prefix}.*"

    def subject(self, provider_id: str) -> str:
        """The subject an event of this type for `provider_id` is published on."""
        if not _PROVIDER_ID.fullmatch(provider_id):
            raise ValueError(f"not a valid provider id for a subject: {provider_id!r}")
        return f"{self.subject_prefix}.{provider_id}"

    def matches(self, subject: str) -> bool:
        prefix, _, provider = subject.rpartition(".")
        return prefix == self.subject_prefix and bool(_PROVIDER_ID.fullmatch(provider))


REQUESTED = EventBinding("requested", GenerationRequested)
SUBMITTED = EventBinding("submitted", GenerationSubmitted)
COMPLETED = EventBinding("completed", GenerationCompleted)
CANCEL_REQUESTED = EventBinding("cancel_requested", GenerationCancelRequested)
WAITING = EventBinding("waiting", GenerationWaiting)

EVENT_BINDINGS: tuple[EventBinding[Event], ...] = (
    REQUESTED,
    SUBMITTED,
    COMPLETED,
    CANCEL_REQUESTED,
    WAITING,
)


def binding_for_subject(subject: str) -> EventBinding[Event] | None:
    """The binding whose subject family contains `subject`, if any."""
    return next((b for b in EVENT_BINDINGS if b.matches(subject)), None)
