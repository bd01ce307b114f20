"""Events for tests that need a valid message on the bus and do not care about its content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from genbus.contracts import GenerationRequested


def sample_requested(user_id: str = "u1") -> GenerationRequested:
    """A fresh `GenerationRequested` (new generation id) for the sim's text-to-video."""
    return GenerationRequested.new(
        generation_id=uuid4(),
        user_id=user_id,
        provider_id="sim",
        operation_type="text_to_video",
        params={"prompt": "x"},
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        reproducible_hash="0" * 64,
    )
