"""Publishing contract events to JetStream, each with `Nats-Msg-Id` = its `event_id`.

Each publish is a PRODUCER span; its context goes out in the `traceparent` header. A message that
already carries a context (an outbox row written inside a traced transaction) continues that
trace; otherwise the current one.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind

from genbus.contracts import GENERATIONS_STREAM, Event, EventBinding, ServiceTopology
from genbus.runtime.tracing import continue_trace, with_trace_headers

MSG_ID_HEADER = "Nats-Msg-Id"
EVENT_TYPE_HEADER = "Genbus-Event-Type"


@dataclass(frozen=True)
class OutgoingMessage:
    """An event encoded for the wire: what an outbox row stores and a relay sends."""

    subject: str
    payload: bytes
    headers: dict[str, str]


def encode_event(binding: EventBinding[Event], event: Event) -> OutgoingMessage:
    """Encode `event` for `binding`; refuses an event of another type than the binding's."""
    if type(event) is not binding.model:
        raise TypeError(f"{type(event).__name__} cannot be sent on {binding.subject_prefix}")
    return OutgoingMessage(
        subject=binding.subject(event.provider_id),
        payload=event.model_dump_json().encode(),
        headers={
            MSG_ID_HEADER: str(event.event_id),
            EVENT_TYPE_HEADER: event.event_type,
            "Content-Type": "application/json",
        },
    )


class EventPublisher:
    """Publishes only the events its service is declared to publish in the contracts topology."""

    def __init__(self, js: JetStreamContext, topology: ServiceTopology) -> None:
        self._js = js
        self._allowed = {b.name for b in topology.publishes}
        self._service = topology.name

    @property
    def service(self) -> str:
        """The service this publisher publishes for."""
        return self._service

    def encode(self, binding: EventBinding[Event], event: Event) -> OutgoingMessage:
        if binding.name not in self._allowed:
            raise PermissionError(f"{self._service} does not publish {binding.subject_prefix}")
        return encode_event(binding, event)

    async def publish(self, binding: EventBinding[Event], event: Event) -> None:
        """Publish and wait for JetStream's ack; a duplicate `event_id` is stored once."""
        await self.send(self.encode(binding, event))

    async def send(self, message: OutgoingMessage) -> None:
        """Publish an encoded message (e.g. an outbox row) and wait for JetStream's ack."""
        with continue_trace(
            f"{message.subject} publish",
            message.headers,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": message.subject,
                "messaging.message.id": message.headers.get(MSG_ID_HEADER, ""),
                "genbus.service": self._service,
            },
        ):
            await self._js.publish(
                message.subject,
                message.payload,
                stream=GENERATIONS_STREAM.name,
                headers=with_trace_headers(message.headers),
            )
