"""The generation state machine: allowed moves, absorbing terminal states, CAS sources."""

from __future__ import annotations

import itertools

import pytest

from genbus.api.domain.status import (
    NON_TERMINAL,
    TERMINAL,
    GenerationStatus,
    accepts_resubmission,
    can_transition,
    sources_of,
)

S = GenerationStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.PROCESSING),
        (S.PROCESSING, S.COMPLETED),
        (S.PROCESSING, S.FAILED),
        (S.PROCESSING, S.CANCELLED),
        # A completed event may overtake the submitted one.
        (S.PENDING, S.COMPLETED),
        (S.PENDING, S.FAILED),
        (S.PENDING, S.CANCELLED),
    ],
)
def test_allowed_transitions(current: S, target: S) -> None:
    assert can_transition(current, target)


def test_exactly_the_documented_transitions_are_allowed() -> None:
    allowed = {(a, b) for a, b in itertools.product(S, S) if can_transition(a, b)}
    assert allowed == {
        (S.PENDING, S.PROCESSING),
        *((S.PENDING, t) for t in TERMINAL),
        *((S.PROCESSING, t) for t in TERMINAL),
    }


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_are_absorbing(terminal: S) -> None:
    assert terminal.terminal
    assert not any(can_transition(terminal, target) for target in S)


def test_processing_never_goes_back_to_pending() -> None:
    assert not can_transition(S.PROCESSING, S.PENDING)
    assert not can_transition(S.PROCESSING, S.PROCESSING)


def test_cas_sources() -> None:
    assert sources_of(S.PROCESSING) == {S.PENDING}
    for terminal in TERMINAL:
        assert sources_of(terminal) == NON_TERMINAL == {S.PENDING, S.PROCESSING}
    assert sources_of(S.PENDING) == frozenset()


def test_only_a_later_attempt_replaces_submission_details() -> None:
    assert accepts_resubmission(S.PROCESSING, current_attempt=1, new_attempt=2)
    assert not accepts_resubmission(S.PROCESSING, current_attempt=2, new_attempt=2)
    assert not accepts_resubmission(S.PROCESSING, current_attempt=2, new_attempt=1)
    assert not accepts_resubmission(S.COMPLETED, current_attempt=1, new_attempt=2)
