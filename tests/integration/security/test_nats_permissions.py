"""The authenticated NATS server enforces the identities of `genbus.contracts.permissions`.

Each user connects as the services do (TLS against the run's CA, its own inbox). A refused
publish or subscription is a "Permissions Violation" the server reports to that client; a
refused JetStream call also gets no answer (the request times out).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from genbus.contracts import (
    ACCOUNT_DIRECTORY,
    CANCEL_REQUESTED,
    COMPLETED,
    DEAD_LETTER_STREAM,
    GENERATIONS_STREAM,
    REQUESTED,
    SUBMITTED,
)
from genbus.contracts.permissions import SUBSCRIBER, SUBSCRIBER_DURABLE, inbox_prefix
from genbus.contracts.topology import DISPATCHER_REQUESTED, POLLER_SUBMITTED
from genbus.devstack.nats import NatsServer
from genbus.runtime.nats_client import connect_nats
from tests.waiting import eventually

pytestmark = pytest.mark.integration
DENIED_WAIT_S = 0.5


@dataclass
class Session:
    """One user's connection and the permission errors the server sent it."""

    nc: Client
    errors: list[str] = field(default_factory=list)

    async def denied(self, attempt: Callable[[], Awaitable[Any]], subject: str) -> None:
        """`attempt` gets no answer and the server reports a violation naming `subject`."""
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await attempt()
        await self.violation(subject)

    async def violation(self, subject: str) -> None:
        """Wait for the server's report of a refused publish or subscription on `subject`."""
        await eventually(
            self._violations, lambda found: any(subject.lower() in e for e in found), timeout=5.0
        )

    async def _violations(self) -> list[str]:
        # The client reports the server's error lower-cased.
        return [e.lower() for e in self.errors if "permissions violation" in e.lower()]


@asynccontextmanager
async def session(server: NatsServer, user: str) -> AsyncIterator[Session]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await connect_nats(server.url_for(user), error_cb=on_error, allow_reconnect=False)
    try:
        yield Session(nc, errors)
    finally:
        await nc.close()


def payload() -> bytes:
    return b'{"forged": true}'


async def stream_messages(server: NatsServer, subject: str) -> int:
    async with session(server, "provisioner") as admin:
        info = await admin.nc.jetstream().stream_info(
            GENERATIONS_STREAM.name, subjects_filter=subject
        )
        return sum((info.state.subjects or {}).values())


async def test_an_anonymous_or_wrongly_authenticated_client_is_refused(
    nats_server: NatsServer,
) -> None:
    assert nats_server.security is not None
    trust = ssl.create_default_context(cafile=str(nats_server.security.tls.ca_file))
    for url in (nats_server.url, nats_server.url.replace("tls://", "tls://api:wrong@")):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, tls=trust, allow_reconnect=False, max_reconnect_attempts=0)


async def test_the_api_publishes_requests_but_never_a_submission(nats_server: NatsServer) -> None:
    async with session(nats_server, "api") as api:
        js = api.nc.jetstream()
        for binding in (REQUESTED, CANCEL_REQUESTED):
            ack = await js.publish(binding.subject("sim"), payload())
            assert ack.stream == GENERATIONS_STREAM.name
        subject = SUBMITTED.subject("sim")
        await api.denied(lambda: js.publish(subject, payload(), timeout=DENIED_WAIT_S), subject)
    assert await stream_messages(nats_server, SUBMITTED.wildcard) == 0


async def test_no_service_may_change_or_delete_a_stream(nats_server: NatsServer) -> None:
    for user in ("api", "dispatcher", "poller", SUBSCRIBER):
        async with session(nats_server, user) as service:
            js = service.nc.jetstream(timeout=DENIED_WAIT_S)
            await service.denied(
                lambda js=js: js.delete_stream(GENERATIONS_STREAM.name),
                f"STREAM.DELETE.{GENERATIONS_STREAM.name}",
            )
            await service.denied(
                lambda js=js: js.add_stream(StreamConfig(name="ROGUE", subjects=["rogue.>"])),
                "STREAM.CREATE.ROGUE",
            )
    async with session(nats_server, "provisioner") as admin:
        assert (await admin.nc.jetstream().stream_info(GENERATIONS_STREAM.name)).config


async def test_a_service_binds_its_own_durable_only(nats_server: NatsServer) -> None:
    async with session(nats_server, "poller") as poller:
        js = poller.nc.jetstream(timeout=DENIED_WAIT_S)
        own = await js.consumer_info(GENERATIONS_STREAM.name, POLLER_SUBMITTED.durable)
        assert own.config.filter_subject == POLLER_SUBMITTED.filter_subject
        other = DISPATCHER_REQUESTED.durable
        await poller.denied(
            lambda: js.consumer_info(GENERATIONS_STREAM.name, other),
            f"CONSUMER.INFO.GENERATIONS.{other}",
        )
        # Its own durable with another filter (every requested generation) is refused too.
        await poller.denied(
            lambda: js.add_consumer(
                GENERATIONS_STREAM.name,
                ConsumerConfig(
                    name=POLLER_SUBMITTED.durable,
                    durable_name=POLLER_SUBMITTED.durable,
                    filter_subject=REQUESTED.wildcard,
                    ack_policy=AckPolicy.EXPLICIT,
                ),
            ),
            f"{POLLER_SUBMITTED.durable}.{REQUESTED.subject_prefix}",
        )
        # Nobody else's replies: only its own inbox, not the shared default one.
        await poller.nc.subscribe("_INBOX.>")
        await poller.violation('"_INBOX.>"')


async def test_the_dispatcher_writes_the_account_directory_and_the_poller_only_reads_it(
    nats_server: NatsServer,
) -> None:
    async with session(nats_server, "dispatcher") as dispatcher:
        kv = await dispatcher.nc.jetstream().key_value(ACCOUNT_DIRECTORY.bucket)
        await kv.put("acct-1", b"entry")
    async with session(nats_server, "poller") as poller:
        kv = await poller.nc.jetstream(timeout=DENIED_WAIT_S).key_value(ACCOUNT_DIRECTORY.bucket)
        assert (await kv.get("acct-1")).value == b"entry"
        subject = f"$KV.{ACCOUNT_DIRECTORY.bucket}.acct-1"
        await poller.denied(lambda: kv.put("acct-1", b"another base_url"), subject)
        await poller.denied(lambda: kv.delete("acct-1"), subject)
        assert (await kv.get("acct-1")).value == b"entry"


async def test_the_subscriber_reads_completions_only_and_cannot_forge_one(
    nats_server: NatsServer,
) -> None:
    async with session(nats_server, "dispatcher") as dispatcher:
        await dispatcher.nc.jetstream().publish(COMPLETED.subject("sim"), b'{"real": true}')
    async with session(nats_server, "api") as api:
        await api.nc.jetstream().publish(REQUESTED.subject("sim"), b"{}")
    async with session(nats_server, SUBSCRIBER) as subscriber:
        js = subscriber.nc.jetstream(timeout=DENIED_WAIT_S)
        pull = await js.pull_subscribe(
            COMPLETED.wildcard,
            durable=SUBSCRIBER_DURABLE,
            stream=GENERATIONS_STREAM.name,
            inbox_prefix=f"{inbox_prefix(SUBSCRIBER)}.".encode(),
        )
        (message,) = await pull.fetch(1, timeout=5)
        assert message.subject == COMPLETED.subject("sim")
        await message.ack()
        # A forged completion is refused by the server, not only by consumers.
        forged = COMPLETED.subject("sim")
        await subscriber.denied(
            lambda: js.publish(forged, payload(), timeout=DENIED_WAIT_S), forged
        )
        # Requests (prompts) stay hidden: no core subscription, no consumer on them.
        await subscriber.nc.subscribe(REQUESTED.wildcard)
        await subscriber.violation(REQUESTED.subject_prefix)
        await subscriber.denied(
            lambda: js.add_consumer(
                GENERATIONS_STREAM.name,
                ConsumerConfig(
                    name=SUBSCRIBER_DURABLE,
                    durable_name=SUBSCRIBER_DURABLE,
                    filter_subject=REQUESTED.wildcard,
                ),
            ),
            f"{SUBSCRIBER_DURABLE}.{REQUESTED.subject_prefix}",
        )
        await subscriber.denied(
            lambda: js.stream_info(DEAD_LETTER_STREAM.name),
            f"STREAM.INFO.{DEAD_LETTER_STREAM.name}",
        )
    assert await stream_messages(nats_server, COMPLETED.wildcard) == 1
