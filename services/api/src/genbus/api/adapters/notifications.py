"""`GENERATION_CHANGED` over core NATS: every replica tells every replica (itself included)
which user's generations changed, so each wakes its own live-status streams of that user."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from genbus.contracts import GENERATION_CHANGED, GenerationChanged
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


class ChangeNotifier:
    """Publishes and receives change notifications; `wake(user_id)` is called for each one."""

    def __init__(self, wake: Callable[[str], None]) -> None:
        self._wake = wake
        self._nc: Client | None = None
        self._sub: Subscription | None = None

    async def start(self, nc: Client, *, listen: bool = True) -> None:
        """Publish over `nc`; with `listen`, also wake this process's streams for every
        replica's changes."""
        self._nc = nc
        if listen:
            self._sub = await nc.subscribe(GENERATION_CHANGED.subject, cb=self._on_message)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:
                log.debug("unsubscribe failed", error=repr(exc))
            self._sub = None
        self._nc = None

    async def publish(self, changes: Sequence[GenerationChanged]) -> None:
        """Wake local streams at once, then tell the other replicas (best effort: a lost
        notification costs them one catch-up interval of latency)."""
        for user_id in {c.user_id for c in changes}:
            self._wake(user_id)
        nc = self._nc
        if nc is None or not nc.is_connected:
            return
        for change in changes:
            await nc.publish(GENERATION_CHANGED.subject, change.model_dump_json().encode())

    async def _on_message(self, msg: Msg) -> None:
        try:
            change = GENERATION_CHANGED.model.model_validate_json(msg.data)
        except ValidationError:
            log.warning("undecodable change notification ignored", size=len(msg.data))
            return
        self._wake(change.user_id)
