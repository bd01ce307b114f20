"""Dead letters as operators see them (payload secrets redacted) and their audited replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext

from genbus.dispatcher.service_layer import audit
from genbus.dispatcher.service_layer.unit_of_work import UowFactory
from genbus.runtime.deadletter import DeadLetter, list_dead_letters, replay_dead_letter

#: Payload keys whose values are never shown (matched case-insensitively, as substrings).
SECRET_KEY_PARTS = ("key", "token", "secret", "password", "credential", "authorization")
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """`value` with every secret-looking key's value replaced, at any depth."""
    if isinstance(value, dict):
        return {
            k: REDACTED if any(part in str(k).lower() for part in SECRET_KEY_PARTS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def shown_payload(letter: DeadLetter) -> str:
    """The payload as JSON with secrets redacted; a payload that is not JSON is not shown."""
    try:
        data = json.loads(letter.payload)
    except ValueError:
        return f"<{len(letter.payload)} bytes, not JSON: not shown>"
    return json.dumps(redact(data), indent=2, sort_keys=True)


def view(letter: DeadLetter) -> dict[str, Any]:
    summary = letter.summary()
    summary["payload"] = shown_payload(letter)
    return summary


@dataclass
class DeadLetters:
    """The dead-letter stream through this replica's JetStream connection."""

    js: Callable[[], JetStreamContext]
    uow: UowFactory

    async def letters(self, limit: int = 200) -> list[dict[str, Any]]:
        return [view(letter) for letter in await list_dead_letters(self.js(), limit)]

    async def replay(self, sequence: int, *, actor: str) -> dict[str, Any]:
        """Publish one again on its subject, remove it, and record who did."""
        letter = await replay_dead_letter(self.js(), sequence)
        await audit.recorded(
            self.uow(),
            actor=actor,
            action="dead_letter.replay",
            target=f"deadletter:{sequence}",
            subject=letter.original_subject,
            consumer=letter.consumer,
            reason=letter.reason[:500],
        )
        return {"sequence": sequence, "subject": letter.original_subject}

    async def replay_all(self, *, actor: str) -> list[dict[str, Any]]:
        letters = await list_dead_letters(self.js())
        return [await self.replay(letter.sequence, actor=actor) for letter in letters]
