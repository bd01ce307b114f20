"""The generation status state machine. Terminal states are absorbing: the first one wins."""

from __future__ import annotations

from enum import StrEnum


class GenerationStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED}
)
NON_TERMINAL = frozenset(GenerationStatus) - TERMINAL

# A completed event may overtake the submitted one, so pending may end directly.
_ALLOWED: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    GenerationStatus.PENDING: frozenset({GenerationStatus.PROCESSING}) | TERMINAL,
    GenerationStatus.PROCESSING: TERMINAL,
    GenerationStatus.COMPLETED: frozenset(),
    GenerationStatus.FAILED: frozenset(),
    GenerationStatus.CANCELLED: frozenset(),
}

#: Statuses the user can cancel at once, without asking the provider.
CANCELLABLE_AT_ONCE = frozenset({GenerationStatus.PENDING})
#: Statuses from which the user may ask for a retry (a new generation with the same request).
RETRYABLE = frozenset({GenerationStatus.FAILED, GenerationStatus.CANCELLED})
#: Statuses in which a later submission attempt replaces the earlier one's details.
RESUBMITTABLE = frozenset({GenerationStatus.PROCESSING})


def can_transition(current: GenerationStatus, target: GenerationStatus) -> bool:
    return target in _ALLOWED[current]


def sources_of(target: GenerationStatus) -> frozenset[GenerationStatus]:
    """Every status from which `target` may be reached: the `status IN (…)` of a CAS update."""
    return frozenset(s for s, targets in _ALLOWED.items() if target in targets)


def accepts_resubmission(current: GenerationStatus, current_attempt: int, new_attempt: int) -> bool:
    """A later submission attempt (after a retryable failure) replaces the earlier one's details."""
    return current in RESUBMITTABLE and new_attempt > current_attempt
