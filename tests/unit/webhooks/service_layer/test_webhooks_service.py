"""The service layer on fakes: events become deliveries (once, for the right endpoints), the
worker sends, retries on the schedule, gives up, and disables a persistently failing endpoint."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from standardwebhooks.webhooks import Webhook

from genbus.contracts import CompletionStatus, GenerationCompleted, GenerationRequested
from genbus.webhooks.adapters.sender import signed_request
from genbus.webhooks.domain.addresses import AddressPolicy, IpAddress, UrlRefused
from genbus.webhooks.domain.model import DeliveryStatus, EventKind, SendResult
from genbus.webhooks.domain.retry import DisablePolicy, RetryPolicy
from genbus.webhooks.service_layer.endpoints import Endpoints
from genbus.webhooks.service_layer.ingest import ingest_event
from genbus.webhooks.service_layer.ports import EndpointChanges
from genbus.webhooks.service_layer.worker import DeliveryWorker
from tests.unit.webhooks.fakes import FakeSender, FakeStore, PlainCipher

pytestmark = pytest.mark.service_layer

NOW = datetime(2030, 1, 1, tzinfo=UTC)
PUBLIC = ipaddress.ip_address("93.184.216.34")


async def _public(host: str, port: int) -> Sequence[IpAddress]:
    return [PUBLIC]


async def _private(host: str, port: int) -> Sequence[IpAddress]:
    return [ipaddress.ip_address("10.0.0.7")]


def _endpoints(store: FakeStore) -> Endpoints:
    return Endpoints(store, PlainCipher(), AddressPolicy(), resolver=_public)


def _cancelled(user_id: str = "alice") -> GenerationCompleted:
    requested = GenerationRequested.new(
        generation_id=uuid4(),
        user_id=user_id,
        provider_id="sim",
        operation_type="text_to_video",
        params={"prompt": "x"},
        deadline_at=NOW + timedelta(hours=1),
        reproducible_hash="0" * 64,
    )
    return GenerationCompleted.following(requested, status=CompletionStatus.CANCELLED, attempt=0)


QUICK_DISABLE = DisablePolicy(failures=3, period_s=0)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _worker(
    store: FakeStore,
    sender: FakeSender,
    clock: Clock,
    disable: DisablePolicy = QUICK_DISABLE,
    batch_size: int = 32,
) -> DeliveryWorker:
    return DeliveryWorker(
        store=store,
        sender=sender,
        cipher=PlainCipher(),
        owner="w1",
        retry=RetryPolicy((1.0, 2.0), jitter=0),
        disable=disable,
        batch_size=batch_size,
        clock=clock,
    )


async def test_registering_stores_the_secret_encrypted_and_returns_it_once() -> None:
    store = FakeStore()
    registered = await _endpoints(store).register("alice", "https://hooks.example/x")
    assert registered.secret.startswith("whsec_")
    assert store.secrets[registered.endpoint.id] == "enc:" + registered.secret
    assert registered.endpoint.event_kinds == tuple(EventKind)


async def test_registering_a_host_that_resolves_to_a_private_address_is_refused() -> None:
    store = FakeStore()
    endpoints = Endpoints(store, PlainCipher(), AddressPolicy(), resolver=_private)
    with pytest.raises(UrlRefused) as refused:
        await endpoints.register("alice", "https://internal.example/x")
    assert refused.value.code == "url_not_allowed"
    assert store.endpoints == {}


async def test_an_event_becomes_one_delivery_per_subscribed_endpoint_of_its_user_once() -> None:
    store = FakeStore()
    endpoints = _endpoints(store)
    wanted = await endpoints.register("alice", "https://a.example/", [EventKind.CANCELLED])
    await endpoints.register("alice", "https://b.example/", [EventKind.COMPLETED])
    await endpoints.register("bob", "https://c.example/")
    event = _cancelled()
    assert await ingest_event(store, event) == 1
    assert await ingest_event(store, event) == 0  # redelivered by JetStream: nothing new
    (row,) = store.rows.values()
    assert row.delivery.endpoint_id == wanted.endpoint.id
    assert row.payload["type"] == "generation.cancelled"


async def test_a_successful_attempt_is_recorded_and_signed_with_the_endpoints_secret() -> None:
    store, sender, clock = FakeStore(), FakeSender(SendResult(200, None, 3)), Clock()
    registered = await _endpoints(store).register("alice", "https://a.example/")
    await ingest_event(store, _cancelled())
    assert await _worker(store, sender, clock).run_once() == 1
    url, webhook_id, secret, payload = sender.sent[0]
    assert (url, secret) == ("https://a.example/", registered.secret)
    (row,) = store.rows.values()
    assert (row.delivery.status, row.delivery.webhook_id) == (DeliveryStatus.SUCCEEDED, webhook_id)
    assert [(a.status_code, a.succeeded) for a in store.attempts] == [(200, True)]
    body, headers = signed_request(url, webhook_id, secret, payload)
    assert Webhook(secret).verify(body, headers)["type"] == "generation.cancelled"


async def test_failures_are_retried_on_the_schedule_with_the_same_id_then_given_up() -> None:
    store, clock = FakeStore(), Clock()
    sender = FakeSender(SendResult(503, "HTTP 503", 1))
    await _endpoints(store).register("alice", "https://a.example/")
    await ingest_event(store, _cancelled())
    worker = _worker(store, sender, clock, disable=DisablePolicy(failures=99, period_s=0))
    assert await worker.run_once() == 1
    (row,) = store.rows.values()
    assert (row.delivery.status, row.delivery.tries) == (DeliveryStatus.PENDING, 1)
    assert row.delivery.next_attempt_at == NOW + timedelta(seconds=1)
    assert await worker.run_once() == 0  # not due yet
    clock.now += timedelta(seconds=1)
    assert await worker.run_once() == 1
    assert row.delivery.next_attempt_at == clock.now + timedelta(seconds=2)
    clock.now += timedelta(seconds=2)
    assert await worker.run_once() == 1
    assert (row.delivery.status, row.delivery.tries) == (DeliveryStatus.FAILED, 3)
    assert row.delivery.next_attempt_at is None
    assert len({sent[1] for sent in sender.sent}) == 1  # one webhook-id on every try
    assert len(store.attempts) == 3


async def test_a_persistently_failing_endpoint_is_disabled_and_its_queue_waits() -> None:
    store, clock = FakeStore(), Clock()
    sender = FakeSender(SendResult(None, "timeout: no answer", 5))
    registered = await _endpoints(store).register("alice", "https://a.example/")
    for _ in range(3):
        await ingest_event(store, _cancelled())
    worker = _worker(store, sender, clock)
    assert await worker.run_once() == 3
    endpoint = store.endpoints[registered.endpoint.id]
    assert not endpoint.enabled
    assert endpoint.disabled_reason is not None
    assert "timeout" in endpoint.disabled_reason
    clock.now += timedelta(hours=1)
    assert await worker.run_once() == 0  # nothing sent to a disabled endpoint
    assert await store.queue_depth(clock.now) == 0
    await _endpoints(store).change("alice", registered.endpoint.id, EndpointChanges(enabled=True))
    assert await store.queue_depth(clock.now) == 3


async def test_a_success_resets_the_failure_count() -> None:
    store, clock = FakeStore(), Clock()
    sender = FakeSender(
        SendResult(500, "HTTP 500", 1), SendResult(500, "HTTP 500", 1), SendResult(204, None, 1)
    )
    registered = await _endpoints(store).register("alice", "https://a.example/")
    for _ in range(3):
        await ingest_event(store, _cancelled())
    await _worker(store, sender, clock, batch_size=1).run_once()
    await _worker(store, sender, clock, batch_size=1).run_once()
    assert store.endpoints[registered.endpoint.id].consecutive_failures == 2
    await _worker(store, sender, clock, batch_size=1).run_once()
    endpoint = store.endpoints[registered.endpoint.id]
    assert (endpoint.enabled, endpoint.consecutive_failures) == (True, 0)


async def test_an_attempt_whose_lease_was_lost_is_not_recorded() -> None:
    store, clock = FakeStore(), Clock()
    await _endpoints(store).register("alice", "https://a.example/")
    await ingest_event(store, _cancelled())

    class Stealing(FakeSender):
        async def send(self, *args: object, **kw: object) -> SendResult:
            (row,) = store.rows.values()
            row.lease_owner = "another replica"
            return SendResult(204, None, 1)

    await _worker(store, Stealing(), clock).run_once()
    assert store.attempts == []
