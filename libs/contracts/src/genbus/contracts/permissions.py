"""Who may say what on NATS: each identity's publish/subscribe allow-lists, from the topology.

Roles:

- `api`, `dispatcher`, `poller`: publish the events the topology says they publish, bind and
  pull from their own durable consumers (create or update them too, with their own filter
  subject only), ack their messages, dead-letter what they cannot process. The dispatcher
  writes the account directory KV bucket; the poller only reads it.
- `subscriber`: a read-only role for other internal services. It may subscribe to completion
  events and create, bind and pull its own durable consumer of them, nothing else.
- `operator`: what the operator's console and admin API (on the dispatcher's admin listener)
  need beyond the dispatcher's own rights: every consumer's and stream's state (lag), the
  dead-letter stream read and trimmed, and dead letters replayed onto their original event
  subjects. Held only by the admin listener's connection, behind the admin token.
- `provisioner`: the privileged identity that creates streams, consumers and KV buckets
  (`genbus.runtime.provision`); also the operator's (CLI, tests' set-up). No service runs as it.

No run-time role gets the stream-admin API (create, update, delete, purge). Each identity's
replies come on an inbox of its own (`inbox_prefix`): nobody can read another one's replies,
which carry the messages it pulls.
"""

from __future__ import annotations

from dataclasses import dataclass

from genbus.contracts.accounts import ACCOUNT_DIRECTORY
from genbus.contracts.bindings import COMPLETED, EVENT_BINDINGS
from genbus.contracts.notifications import GENERATION_CHANGED
from genbus.contracts.streams import (
    DEAD_LETTER_ROOT,
    DEAD_LETTER_STREAM,
    GENERATIONS_STREAM,
    ConsumerSpec,
)
from genbus.contracts.topology import SERVICES, ServiceTopology

API = "$JS.API"
SUBSCRIBER = "subscriber"
OPERATOR = "operator"
PROVISIONER = "provisioner"
#: The durable consumer of the `subscriber` user that `make run` and the tests create.
SUBSCRIBER_DURABLE = "subscriber-completed"


@dataclass(frozen=True)
class Permissions:
    """One NATS user's allow-lists; everything else is denied."""

    user: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.user)


def inbox_prefix(user: str) -> str:
    """Where `user`'s replies arrive (the client's `inbox_prefix`)."""
    return f"_INBOX_{user}"


def _consumer_subjects(stream: str, durable: str, filter_subject: str) -> tuple[str, ...]:
    """Create/update (with this filter only), look up, pull from and ack one durable."""
    return (
        f"{API}.CONSUMER.CREATE.{stream}.{durable}.{filter_subject}",
        f"{API}.CONSUMER.INFO.{stream}.{durable}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    )


def _durable(spec: ConsumerSpec) -> tuple[str, ...]:
    stream = GENERATIONS_STREAM.name
    return (
        *_consumer_subjects(stream, spec.durable, spec.filter_subject),
        f"{DEAD_LETTER_ROOT}.{spec.durable}.>",
    )


def _kv_read(bucket: str) -> tuple[str, ...]:
    stream = f"KV_{bucket}"
    return (
        f"{API}.STREAM.INFO.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.STREAM.MSG.GET.{stream}",
    )


def _kv_write(bucket: str) -> tuple[str, ...]:
    return (f"$KV.{bucket}.>",)


def service_permissions(topology: ServiceTopology) -> Permissions:
    """A run-time service's allow-lists, from what the topology says it does."""
    publish: list[str] = [f"{API}.INFO", f"{API}.STREAM.INFO.{GENERATIONS_STREAM.name}"]
    publish += [binding.wildcard for binding in topology.publishes]
    for spec in topology.consumes:
        publish += _durable(spec)
    if topology.name in KV_WRITERS:
        publish += [*_kv_read(ACCOUNT_DIRECTORY.bucket), *_kv_write(ACCOUNT_DIRECTORY.bucket)]
    elif topology.name in KV_READERS:
        publish += _kv_read(ACCOUNT_DIRECTORY.bucket)
    subscribe = [f"{inbox_prefix(topology.name)}.>"]
    for notification in NOTIFIES.get(topology.name, ()):
        publish.append(notification)
        subscribe.append(notification)
    return Permissions(topology.name, tuple(publish), tuple(subscribe))


def subscriber_permissions(
    user: str = SUBSCRIBER, durable: str = SUBSCRIBER_DURABLE
) -> Permissions:
    """Follow completion events: core subscriptions and one durable consumer of them."""
    publish = (
        f"{API}.INFO",
        f"{API}.STREAM.INFO.{GENERATIONS_STREAM.name}",
        *_consumer_subjects(GENERATIONS_STREAM.name, durable, COMPLETED.wildcard),
        f"{API}.CONSUMER.DELETE.{GENERATIONS_STREAM.name}.{durable}",
    )
    return Permissions(user, publish, (COMPLETED.wildcard, f"{inbox_prefix(user)}.>"))


def operator_permissions(user: str = OPERATOR) -> Permissions:
    """Look at every consumer and stream, read and trim the dead letters, replay them."""
    dead = DEAD_LETTER_STREAM.name
    publish = (
        f"{API}.INFO",
        f"{API}.STREAM.INFO.*",
        f"{API}.CONSUMER.INFO.*.*",
        # Reading the dead letters: an ordered (ephemeral) consumer of their stream.
        f"{API}.CONSUMER.CREATE.{dead}",
        f"{API}.CONSUMER.CREATE.{dead}.>",
        f"{API}.CONSUMER.DELETE.{dead}.>",
        f"{API}.STREAM.MSG.GET.{dead}",
        f"{API}.DIRECT.GET.{dead}",
        f"{API}.STREAM.MSG.DELETE.{dead}",
        "$JS.FC.>",  # flow-control replies of that consumer
        # A replay puts the original message back on its event subject.
        *(binding.wildcard for binding in EVENT_BINDINGS),
    )
    return Permissions(user, publish, (f"{inbox_prefix(user)}.>",))


def provisioner_permissions(user: str = PROVISIONER) -> Permissions:
    """Everything: streams, consumers, KV buckets, dead-letter replay. Never a service's."""
    return Permissions(user, (">",), (">",))


#: Core-NATS notification subjects a service both publishes and subscribes to (api replicas
#: wake each other's live-status streams).
NOTIFIES: dict[str, tuple[str, ...]] = {"api": (GENERATION_CHANGED.subject,)}
#: Who writes the account directory, and who only reads it.
KV_WRITERS = frozenset({"dispatcher"})
KV_READERS = frozenset({"poller"})


def all_permissions() -> tuple[Permissions, ...]:
    """Every identity of a deployment: the services, the subscriber, the operator and the
    provisioner."""
    services = tuple(service_permissions(topology) for topology in SERVICES.values())
    return (*services, subscriber_permissions(), operator_permissions(), provisioner_permissions())


#: The stream-admin API no run-time role may use (checked by a unit test).
STREAM_ADMIN = (
    f"{API}.STREAM.CREATE.",
    f"{API}.STREAM.UPDATE.",
    f"{API}.STREAM.DELETE.",
    f"{API}.STREAM.PURGE.",
)
