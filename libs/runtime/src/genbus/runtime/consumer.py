"""Event consumers with an explicit acknowledgement policy.

A handler receives a validated contract event. The message is acked only after the handler
returned, i.e. after its effect is durable. Outcomes:

- the handler returns: ack;
- it raises `RedeliverLater`: nak with the given delay (normal flow, e.g. "poll again later");
- it raises `Unprocessable`: the message goes to the dead-letter stream with the reason;
- it raises anything else: nak with the consumer's backoff delay; after `max_deliver`
  deliveries the message goes to the dead-letter stream instead of being redelivered.
An undecodable or schema-invalid message goes to the dead-letter stream at once.
Nothing is ever acked before its handler returned, nor dropped by default.

Messages are pulled with nats-py directly (`genbus.runtime.pull`, run by the `GenbusBroker`
that `service.make_broker` returns): FastStream's per-message machinery cost more than most
handlers. Each message is counted by outcome and timed (`genbus_consumer_messages_total`,
`genbus_consumer_message_seconds`) and handled in a CONSUMER span that continues the
publisher's trace (`traceparent` header).

Group commit: a consumer may also have a `batch_handler` that applies several events in one
transaction. The messages JetStream hands over together (one pull) are then applied by it at
once, all or nothing; if it raises, each message of that group runs through `handler` on its
own, so one bad message costs its neighbours a retry, never their outcome. Each message is
still acked, nak'ed or dead-lettered on its own.

Keep-alive (opt-in, `keep_alive_s`): while a handler runs, JetStream is told every
`keep_alive_s` that the message is in progress (`+WPI`), so a handler that outlasts the ack wait
does not get its message handed to another consumer meanwhile. Choose it well below the ack wait.
Without it (the default) a message is redelivered once the ack wait passes, handler or not.

While a handler runs, every log line carries the event's generation_id, event_id and consumer
(structlog contextvars), and the message's span carries them as attributes.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from genbus.contracts import GENERATIONS_STREAM, ConsumerSpec, Event
from genbus.contracts.permissions import inbox_prefix
from genbus.runtime.deadletter import dead_letter
from genbus.runtime.jetstream import consumer_config
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS
from genbus.runtime.pull import GenbusBroker, PullLoop
from genbus.runtime.tracing import annotate_span, continue_trace, current_trace_headers

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
    #: The trace context this message is handled in (empty when tracing is off), for work
    #: that outlives the handler or runs outside its context (a group commit).
    trace_context: dict[str, str] = field(default_factory=dict)

    @property
    def stream_sequence(self) -> int:
        """The message's sequence number in its stream: the order it was published in."""
        return int(self.raw.metadata.sequence.stream) if self.raw.reply else 0

    async def in_progress(self) -> None:
        """Tell JetStream we are still working, so it does not redeliver meanwhile."""
        await self.raw.in_progress()


Handler = Callable[[Delivery[E]], Awaitable[None]]
#: Applies every delivery in one transaction, all or nothing.
BatchHandler = Callable[[Sequence[Delivery[E]]], Awaitable[None]]


@dataclass
class GroupCommit(Generic[E]):
    """Collects the deliveries that arrive together and applies them with one `batch_handler`
    call; falls back to `handler` per delivery when that raises. `run` returns or raises what
    the delivery's own handling did."""

    consumer: str
    handler: Handler[E]
    batch_handler: BatchHandler[E]
    _waiting: list[tuple[Delivery[E], asyncio.Future[None]]] = field(default_factory=list)
    _flushing: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self, delivery: Delivery[E]) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((delivery, future))
        if len(self._waiting) == 1:
            # The other messages of the same pull start in this loop iteration: they join
            # before the group is taken. The group runs in a context of its own, not in the
            # first message's (its log fields and span belong to that message only).
            loop.call_soon(self._start_flush, context=contextvars.Context())
        await future

    def _start_flush(self) -> None:
        group, self._waiting = self._waiting, []
        task = asyncio.create_task(self._flush(group))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, group: list[tuple[Delivery[E], asyncio.Future[None]]]) -> None:
        try:
            if len(group) > 1 and await self._apply_together(group):
                return
            for delivery, future in group:
                with structlog.contextvars.bound_contextvars(
                    generation_id=str(delivery.event.generation_id),
                    event_id=str(delivery.event.event_id),
                    consumer=self.consumer,
                ):
                    try:
                        await self.handler(delivery)
                    except Exception as exc:
                        _settle(future, exc)
                    else:
                        _settle(future, None)
        except BaseException as exc:  # cancelled (shutdown): nobody may wait forever
            for _, future in group:
                _settle(future, exc)
            raise

    async def _apply_together(self, group: list[tuple[Delivery[E], asyncio.Future[None]]]) -> bool:
        try:
            with structlog.contextvars.bound_contextvars(consumer=self.consumer):
                await self.batch_handler([delivery for delivery, _ in group])
        except Exception as exc:
            log.info("group commit failed, applying one by one", size=len(group), error=repr(exc))
            return False
        for _, future in group:
            _settle(future, None)
        return True


def _settle(future: asyncio.Future[None], outcome: BaseException | None) -> None:
    if future.done():  # its message's task was cancelled meanwhile
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)


def register_consumer(
    broker: NatsBroker,
    spec: ConsumerSpec,
    handler: Handler[Any],
    *,
    batch_size: int = 32,
    max_workers: int | None = None,
    batch_handler: BatchHandler[Any] | None = None,
    keep_alive_s: float | None = None,
) -> None:
    """Subscribe `handler` to the durable consumer `spec` (already provisioned); with a
    `batch_handler`, messages pulled together are applied together (see the module doc).

    `max_workers` > 1 handles messages one by one, up to that many at once, fetching more as
    soon as a worker is free; otherwise each pull is handled as a whole before the next.
    `keep_alive_s` keeps a message in hand alive while its handler runs (see the module doc)."""
    if keep_alive_s is not None and not 0 < keep_alive_s < spec.ack_wait_s:
        raise ValueError(f"keep_alive_s must be within the ack wait ({spec.ack_wait_s} s)")
    apply: Handler[Any] = (
        GroupCommit(spec.durable, handler, batch_handler).run
        if batch_handler is not None
        else handler
    )
    if not isinstance(broker, GenbusBroker):
        raise TypeError("consumers run on a GenbusBroker (genbus.runtime.service.make_broker)")
    consume = _Consume(broker, spec, apply, keep_alive_s)
    broker.add_pull_loop(
        PullLoop(
            stream=GENERATIONS_STREAM.name,
            subject=spec.filter_subject,
            durable=spec.durable,
            config=consumer_config(spec),
            # Pulled messages arrive on the service's own inbox: its NATS user may read only that.
            inbox_prefix=f"{inbox_prefix(spec.service)}.".encode(),
            handle=consume.on_message,
            batch_size=batch_size,
            max_workers=max_workers,
        )
    )


@dataclass(frozen=True)
class _Consume:
    """What becomes of each message of one consumer: decoded and checked, applied, then acked,
    put off (nak with a delay) or dead-lettered with its reason."""

    broker: NatsBroker
    spec: ConsumerSpec
    apply: Handler[Any]
    keep_alive_s: float | None

    async def on_message(self, msg: Msg) -> None:
        spec = self.spec
        started = time.perf_counter()
        headers = msg.headers or {}
        with continue_trace(
            f"{msg.subject} process",
            headers,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.message.id": headers.get("Nats-Msg-Id", ""),
                "messaging.consumer.group.name": spec.durable,
            },
        ):
            outcome = await self._settle(msg, headers)
        METRICS.consumer_messages.labels(spec.durable, outcome).inc()
        METRICS.consumer_message_seconds.labels(spec.durable).observe(time.perf_counter() - started)

    async def _settle(self, msg: Msg, headers: dict[str, str]) -> str:
        """Decode, check, apply and ack / nak / dead-letter `msg`; returns the outcome."""
        spec = self.spec
        deliveries = msg.metadata.num_delivered if msg.reply else 1
        js = self.broker.connection.jetstream()
        annotate_span(service=spec.service, consumer=spec.durable, deliveries=deliveries)
        model: type[Event] = spec.binding.model
        try:
            event = model.model_validate_json(msg.data)
        except ValidationError as exc:
            reason = f"invalid {model.__name__}: {_errors(exc)}"
            await _dead_letter(js, spec, msg, reason, deliveries, "invalid")
            return "dead_lettered"
        if (
            not spec.binding.matches(msg.subject)
            or event.provider_id != msg.subject.rsplit(".")[-1]
        ):
            reason = "subject does not match the event"
            await _dead_letter(js, spec, msg, reason, deliveries, "subject_mismatch")
            return "dead_lettered"
        generation_id, event_id = str(event.generation_id), str(event.event_id)
        annotate_span(generation_id=generation_id, event_id=event_id)
        with structlog.contextvars.bound_contextvars(
            generation_id=generation_id, event_id=event_id, consumer=spec.durable
        ):
            return await self._handle(msg, headers, js, event, deliveries)

    async def _handle(
        self, msg: Msg, headers: dict[str, str], js: Any, event: Event, deliveries: int
    ) -> str:
        delivery = Delivery(
            event, msg.subject, deliveries, dict(headers), msg, current_trace_headers()
        )
        try:
            if self.keep_alive_s is None:
                await self.apply(delivery)
            else:
                await _kept_alive(self.apply(delivery), msg, self.keep_alive_s)
        except RedeliverLater as later:
            await msg.nak(delay=later.delay_s)
            return "nacked"
        except Unprocessable as exc:
            await _dead_letter(js, self.spec, msg, str(exc), deliveries, "unprocessable")
            return "dead_lettered"
        except Exception as exc:
            return await self._failed(msg, js, exc, deliveries)
        await msg.ack()
        return "acked"

    async def _failed(self, msg: Msg, js: Any, exc: Exception, deliveries: int) -> str:
        """Redelivered after the spec's backoff, or dead-lettered past its deliveries."""
        spec = self.spec
        if 0 < spec.max_deliver <= deliveries:
            reason = f"max deliveries ({deliveries}) reached; last error: {exc!r}"
            await _dead_letter(js, spec, msg, reason, deliveries, "max_deliveries")
            return "dead_lettered"
        delay = spec.retry_delay(deliveries)
        log.warning(
            "handler failed, will redeliver",
            deliveries=deliveries,
            retry_in_s=delay,
            error=repr(exc),
            exc_info=not isinstance(exc, (ConnectionError, TimeoutError)),
        )
        await msg.nak(delay=delay)
        return "nacked"


async def _kept_alive(work: Awaitable[None], msg: Msg, every_s: float) -> None:
    """Await `work`, telling JetStream every `every_s` that `msg` is still in progress. The
    heartbeat has stopped when this returns: no `+WPI` can follow the message's ack or nak (one
    would override a nak's delay)."""
    beat = asyncio.create_task(_heartbeat(msg, every_s))
    try:
        await work
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)


async def _heartbeat(msg: Msg, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await msg.in_progress()
        except Exception as exc:  # the next beat may get through; the ack wait is the backstop
            log.warning("could not mark the message in progress", error=repr(exc))


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
