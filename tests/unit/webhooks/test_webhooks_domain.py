"""The webhooks service's rules without I/O: event kinds, ids, payloads, secrets, retries,
disabling, and which URLs and addresses a delivery may reach."""

from __future__ import annotations

import base64
import ipaddress
import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from genbus.contracts import (
    Asset,
    CompletionStatus,
    ErrorInfo,
    GenerationCancelRequested,
    GenerationCompleted,
    GenerationRequested,
    GenerationSubmitted,
)
from genbus.webhooks.config import WebhooksSettings
from genbus.webhooks.domain.addresses import AddressPolicy, UrlRefused, parse_url
from genbus.webhooks.domain.model import (
    EventKind,
    kind_of,
    new_signing_secret,
    webhook_id,
    webhook_payload,
)
from genbus.webhooks.domain.retry import DisablePolicy, RetryPolicy

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _requested() -> GenerationRequested:
    return GenerationRequested.new(
        generation_id=uuid4(),
        user_id="alice",
        provider_id="sim",
        operation_type="text_to_video",
        params={"prompt": "x"},
        deadline_at=NOW + timedelta(hours=1),
        reproducible_hash="0" * 64,
    )


def test_each_event_maps_to_its_kind() -> None:
    requested = _requested()
    submitted = GenerationSubmitted.following(
        requested, account_id="a", provider_job_id="j", attempt=1
    )
    asset = Asset(url="https://cdn.example/v.mp4", media_type="video/mp4")
    done = GenerationCompleted.following(
        submitted, status=CompletionStatus.COMPLETED, attempt=1, asset=asset
    )
    failed = GenerationCompleted.following(
        submitted,
        status=CompletionStatus.FAILED,
        attempt=1,
        error=ErrorInfo(code="provider_error", message="no", retryable=False),
    )
    cancelled = GenerationCompleted.following(
        submitted, status=CompletionStatus.CANCELLED, attempt=1
    )
    cancel = GenerationCancelRequested.new(
        generation_id=requested.generation_id,
        user_id="alice",
        provider_id="sim",
        operation_type="text_to_video",
        reason="x",
    )
    assert [kind_of(e) for e in (requested, cancel)] == [None, None]
    assert [kind_of(e) for e in (submitted, done, failed, cancelled)] == [
        EventKind.SUBMITTED,
        EventKind.COMPLETED,
        EventKind.FAILED,
        EventKind.CANCELLED,
    ]
    payload = webhook_payload(done, EventKind.COMPLETED)
    assert payload["type"] == "generation.completed"
    assert payload["data"]["generation_id"] == str(done.generation_id)
    assert payload["data"]["asset"]["url"] == "https://cdn.example/v.mp4"
    assert payload["timestamp"] == payload["data"]["occurred_at"]


def test_the_webhook_id_is_stable_per_endpoint_and_event() -> None:
    endpoint, other, event = uuid4(), uuid4(), uuid4()
    assert webhook_id(endpoint, event) == webhook_id(endpoint, event)
    assert webhook_id(endpoint, event) != webhook_id(other, event)
    assert webhook_id(endpoint, event) != webhook_id(endpoint, uuid4())
    assert webhook_id(endpoint, event).startswith("msg_")
    assert len(webhook_id(endpoint, event)) <= 40


def test_secrets_are_standard_webhooks_secrets_and_random() -> None:
    secrets = {new_signing_secret() for _ in range(50)}
    assert len(secrets) == 50
    secret = secrets.pop()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_retries_follow_the_schedule_with_jitter_then_stop() -> None:
    policy = RetryPolicy((1.0, 10.0, 100.0), jitter=0.2)
    rng = random.Random(7)
    delays = [policy.next_delay_s(n, rng) for n in (1, 2, 3)]
    assert [
        d is not None and b * 0.8 <= d <= b * 1.2 for d, b in zip(delays, (1, 10, 100), strict=True)
    ] == [True] * 3
    assert policy.next_delay_s(4) is None
    assert RetryPolicy((5.0,), jitter=0).next_delay_s(1) == 5.0


def test_the_default_schedule_retries_for_more_than_a_day() -> None:
    schedule = WebhooksSettings().retry_policy().schedule_s
    assert sum(schedule) * 0.8 > 24 * 3600  # even with every delay jittered down


def test_an_endpoint_is_disabled_only_after_enough_failures_over_the_period() -> None:
    policy = DisablePolicy(failures=3, period_s=3600)
    since = NOW - timedelta(hours=2)
    assert not policy.should_disable(2, since, NOW)
    assert not policy.should_disable(3, NOW - timedelta(minutes=5), NOW)
    assert policy.should_disable(3, since, NOW)
    assert not policy.should_disable(5, None, NOW)
    assert "HTTP 500" in policy.reason(3, "HTTP 500")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://x",
        "http://",
        "//example.com/x",
        "http://user:pw@example.com/",
        "http://example.com:99999/",
        "javascript:alert(1)",
    ],
)
def test_urls_that_are_not_plain_http_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        parse_url(url)
    assert refused.value.code == "invalid_url"


def test_a_url_gives_its_host_and_port() -> None:
    assert parse_url("https://Example.com/x").port == 443
    assert parse_url("http://example.com:8080/x").port == 8080
    assert parse_url("http://[::1]:81/").host == "::1"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not AddressPolicy().allows(ip)
    with pytest.raises(UrlRefused) as refused:
        AddressPolicy().check("host", [ip])
    assert refused.value.code == "url_not_allowed"
    assert AddressPolicy.from_strings([address]).allows(ip)


def test_public_addresses_are_allowed_but_not_mixed_with_private_ones() -> None:
    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.1")
    policy = AddressPolicy.from_strings(["127.0.0.0/8"])
    assert policy.check("h", [public]) == public
    assert policy.check("h", [ipaddress.ip_address("127.0.0.2")]) == ipaddress.ip_address(
        "127.0.0.2"
    )
    with pytest.raises(UrlRefused):
        policy.check("h", [public, private])
    with pytest.raises(UrlRefused) as refused:
        policy.check("h", [])
    assert refused.value.code == "url_unresolvable"


def test_settings_read_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENBUS_WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8, ::1")
    monkeypatch.setenv("GENBUS_WEBHOOKS_RETRY_SCHEDULE_S", "0.5,2")
    settings = WebhooksSettings()
    assert settings.address_policy().allows(ipaddress.ip_address("::1"))
    assert settings.retry_policy().schedule_s == (0.5, 2.0)


def test_a_lease_must_outlast_an_attempt() -> None:
    with pytest.raises(ValueError, match="lease_s"):
        WebhooksSettings(lease_s=10, attempt_timeout_s=15)
