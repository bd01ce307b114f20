"""Event consumers with an explicit acknowledgement policy.

A handler receives a validated contract event. The message is acked only after the handler
returned, i.e. after its effect is durable. Outcomes:

- the handler returns: ack;
- it raises `RedeliverLater`: nak with the given delay (normal flow, e.g. "poll again later");
- it raises `Unprocessable`: the message goes to the dead-letter stream with the reason;
- it raises anything else: nak with the consumer's backoff delay; after `max_deliver`
  deliveries the message goes to the dead-letter stream instead of being redelivered.
An undecodable or schema-invalid message goes to the dead-letter stream at once.
FastStream's own ack logic is switched off (AckPolicy.MANUAL): nothing is ever dropped by default.

While a handler runs, every log line carries the event's generation_id, event_id and consumer
(structlog contextvars), and the message's span (FastStream's telemetry middleware, which
continued the publisher's trace) carries them as attributes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from nats.aio.msg import Msg
from pydantic import ValidationError

from genbus.contracts import GENERATIONS_STREAM, ConsumerSpec, Event
from genbus.runtime.deadletter import dead_letter
from genbus.runtime.jetstream import consumer_config
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS
from genbus.runtime.tracing import annotate_span

E = TypeVar("E", bound=Event)
log = get_logger(__name__)


class RedeliverLater(Exception):
    """Not done yet: deliver this message again after `delay_s`."""

    def __init__(self, delay_s: float, reason: str = "") -> None:
        super().__init__(reason or f"redeliver in {delay_s:.3f}s")
        self.delay_s = delay_s


class Unprocessable(Exception):
    """This message can never be processed: dead-letter it with `reason`."""


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """A decoded event and facts about this delivery of it."""

    event: E
    subject: str
    num_delivered: int
    headers: dict[str, str]
    raw: Msg

    async def in_progress(self) -> None:
        """Tell JetStream we are still working, so it does not redeliver meanwhile."""
        await self.raw.in_progress()


Handler = Callable[[Delivery[E]], Awaitable[None]]


def register_consumer(
    broker: NatsBroker,
    spec: ConsumerSpec,
    handler: Handler[Any],
    *,
    batch_size: int = 32,
    max_workers: int | None = None,
) -> None:
    """Subscribe `handler` to the durable consumer `spec` (already provisioned)."""
    model: type[Event] = spec.binding.model

    async def on_message(message: NatsMessage) -> None:
        msg: Msg = message.raw_message
        deliveries = msg.metadata.num_delivered if msg.reply else 1
        js = broker.connection.jetstream()
        annotate_span(service=spec.service, consumer=spec.durable, deliveries=deliveries)
        try:
            event = model.model_validate_json(msg.data)
        except ValidationError as exc:
            reason = f"invalid {model.__name__}: {_errors(exc)}"
            await _dead_letter(js, spec, msg, reason, deliveries, "invalid")
            return
        if (
            not spec.binding.matches(msg.subject)
            or event.provider_id != msg.subject.rsplit(".")[-1]
        ):
            reason = "subject does not match the event"
            await _dead_letter(js, spec, msg, reason, deliveries, "subject_mismatch")
            return
        generation_id, event_id = str(event.generation_id), str(event.event_id)
        annotate_span(generation_id=generation_id, event_id=event_id)
        with structlog.contextvars.bound_contextvars(
            generation_id=generation_id, event_id=event_id, consumer=spec.durable
        ):
            await _handle(message, js, event, deliveries)

    async def _handle(message: NatsMessage, js: Any, event: Event, deliveries: int) -> None:
        msg: Msg = message.raw_message
        delivery = Delivery(event, msg.subject, deliveries, dict(msg.headers or {}), msg)
        try:
            await handler(delivery)
        except RedeliverLater as later:
            await message.nack(delay=later.delay_s)
            return
        except Unprocessable as exc:
            await _dead_letter(js, spec, msg, str(exc), deliveries, "unprocessable")
            return
        except Exception as exc:
            if 0 < spec.max_deliver <= deliveries:
                reason = f"max deliveries ({deliveries}) reached; last error: {exc!r}"
                await _dead_letter(js, spec, msg, reason, deliveries, "max_deliveries")
                return
            delay = spec.retry_delay(deliveries)
            log.warning(
                "handler failed, will redeliver",
                deliveries=deliveries,
                retry_in_s=delay,
                error=repr(exc),
                exc_info=not isinstance(exc, (ConnectionError, TimeoutError)),
            )
            await message.nack(delay=delay)
            return
        await message.ack()

    config = consumer_config(spec)
    broker.subscriber(
        spec.filter_subject,
        stream=JStream(GENERATIONS_STREAM.name, declare=False),
        durable=spec.durable,
        config=config,
        pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
        max_workers=max_workers,
        title=spec.durable,
        description=f"{spec.service} consumes {spec.binding.model.__name__}",
    )(on_message)


async def _dead_letter(
    js: Any, spec: ConsumerSpec, msg: Msg, reason: str, deliveries: int, reason_class: str
) -> None:
    log.error(
        "dead-lettering message",
        consumer=spec.durable,
        subject=msg.subject,
        reason=reason,
        reason_class=reason_class,
        deliveries=deliveries,
    )
    # If this publish fails the exception propagates and the message is redelivered: never lost.
    await dead_letter(js, spec.durable, msg, reason, deliveries)
    await msg.term()
    METRICS.dead_letters.labels(spec.durable, reason_class).inc()


def _errors(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)[:800]
