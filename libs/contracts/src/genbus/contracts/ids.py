"""Deterministic identifiers: the same fact, published again after a crash, gets the same id."""

from __future__ import annotations

from uuid import UUID, uuid5

_NAMESPACE = UUID("5f0e1c52-7a3b-4d2e-9c61-2b8f3e4a9d10")


def derive_event_id(generation_id: UUID, event_type: str, attempt: int = 0) -> UUID:
    """The event id of `event_type` for one generation and attempt.

    JetStream de-duplicates on it (`Nats-Msg-Id`) and consumers use it to recognise a replay.
    """
    return uuid5(_NAMESPACE, f"{generation_id}/{event_type}/{attempt}")


def provider_idempotency_key(generation_id: UUID, attempt: int) -> str:
    """The `Idempotency-Key` of one submission attempt: resubmitting it never makes a second job."""
    return f"genbus-{generation_id}-{attempt}"
