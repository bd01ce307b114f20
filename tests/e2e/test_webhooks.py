"""Webhooks end to end: the whole system (with the webhooks service) as OS processes, a receiver
in this process. Registered through the management API with an api key; deliveries signed
(Standard Webhooks), retried with the same `webhook-id` after an outage, an always-failing
endpoint disabled with its reason, SSRF refusals at registration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from genbus.devstack.nats import NatsServer
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import AccountSeed, GenbusSystem, SystemConfig
from tests.e2e.conftest import wait_for
from tests.integration.webhooks.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

#: Short retries, quick disabling, receivers on this machine allowed.
WEBHOOKS_ENV = {
    "GENBUS_WEBHOOKS_ALLOW_NETWORKS": "127.0.0.0/8",
    "GENBUS_WEBHOOKS_RETRY_SCHEDULE_S": "0.2,0.3,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
    "GENBUS_WEBHOOKS_RETRY_JITTER": "0",
    "GENBUS_WEBHOOKS_DISABLE_AFTER_FAILURES": "4",
    "GENBUS_WEBHOOKS_DISABLE_AFTER_S": "0",
    "GENBUS_WEBHOOKS_POLL_INTERVAL_S": "0.1",
}
GENERATION = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "w"}}


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[GenbusSystem]:
    base = tmp_path_factory.mktemp("webhooks")
    nats = NatsServer(base / "nats", log_path=base / "nats.log")
    nats.start()
    database = f"e2e_{base.name.replace('-', '_')}"
    postgres.create_database(database)
    genbus = GenbusSystem(
        SystemConfig(
            base_dir=base,
            nats_url=nats.url,
            database_url=postgres.dsn_for(database),
            sim_env={"SIM_DURATION_S": "0.1", "SIM_DURATION_JITTER_S": "0"},
            log_to_files=True,
            log_format="json",
            # Two webhooks replicas share the queue: each delivery is still sent once.
            replicas={"api": 1, "dispatcher": 1, "poller": 1, "webhooks": 2},
            service_env={"webhooks": WEBHOOKS_ENV},
            # One account is enough here, and each costs a CLI run at start-up.
            accounts=(AccountSeed("sim-1", "sim-key-1", max_concurrent=4),),
            nats_security=nats.security,
        )
    )
    try:
        genbus.start()
        yield genbus
    finally:
        genbus.stop()
        nats.stop()


@pytest.fixture(scope="module")
def keys(system: GenbusSystem) -> dict[str, str]:
    """An api key each for alice and bob (made at once: each is a CLI run)."""
    with ThreadPoolExecutor(2) as pool:
        made = pool.map(lambda user: (user, system.create_api_key(user, "e2e")), ("alice", "bob"))
        return dict(made)


@pytest.fixture(scope="module")
def alice(
    system: GenbusSystem, keys: dict[str, str]
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Alice's clients of the api and of the webhooks service, with her key."""
    headers = {"Authorization": f"Bearer {keys['alice']}"}
    with (
        httpx.Client(base_url=system.api_url, headers=headers, timeout=10.0) as api,
        httpx.Client(base_url=system.webhooks_url, headers=headers, timeout=10.0) as hooks,
    ):
        yield api, hooks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


ENDPOINTS = "/api/v1/webhooks/endpoints"


def _register(hooks: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, **({"events": events} if events else {})}
    response = hooks.post(ENDPOINTS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _generate(api: httpx.Client) -> str:
    response = api.post("/api/v1/generations", json=GENERATION)
    assert response.status_code == 201, response.text
    generation_id: str = response.json()["id"]
    return generation_id


def _deliveries(hooks: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    response = hooks.get(f"{ENDPOINTS}/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _attempts_counted(system: GenbusSystem, outcome: str) -> float:
    """`genbus_webhook_attempts_total{outcome}` summed over the webhooks replicas."""
    total = 0.0
    for name in ("webhooks", "webhooks-2"):
        text = httpx.get(f"{system.http_url(name)}/metrics", timeout=10.0).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (sample.name, sample.labels.get("outcome")) == (
                    "genbus_webhook_attempts_total",
                    outcome,
                ):
                    total += sample.value
        assert "genbus_webhook_queue_depth" in text
    return total


def test_deliveries_are_signed_and_verify_with_the_returned_secret(
    system: GenbusSystem, alice: tuple[httpx.Client, httpx.Client], receiver: Receiver
) -> None:
    succeeded_before = _attempts_counted(system, "succeeded")
    api, hooks = alice
    created = _register(hooks, receiver.url)
    assert created["secret"].startswith("whsec_")
    assert "secret" not in hooks.get(f"{ENDPOINTS}/{created['id']}").json()
    generation_id = _generate(api)

    got = wait_for(receiver.requests, lambda r: len(r) >= 2)
    verifier = Webhook(created["secret"])
    payloads = [verifier.verify(r.body, r.headers) for r in got]
    assert {p["type"] for p in payloads} == {"generation.submitted", "generation.completed"}
    assert {p["data"]["generation_id"] for p in payloads} == {generation_id}
    assert all(p["data"]["user_id"] == "alice" for p in payloads)
    # A tampered body does not verify.
    with pytest.raises(Exception, match="signature"):
        verifier.verify(got[0].body.replace(b"alice", b"mallory"), got[0].headers)

    deliveries = wait_for(
        lambda: _deliveries(hooks, created["id"]),
        lambda d: len(d) == 2 and all(x["status"] == "succeeded" for x in d),
    )
    assert {d["webhook_id"] for d in deliveries} == {r.headers["webhook-id"] for r in got}
    attempts = hooks.get(
        f"{ENDPOINTS}/{created['id']}/deliveries/{deliveries[0]['id']}/attempts"
    ).json()["items"]
    assert [(a["status_code"], a["succeeded"]) for a in attempts] == [(204, True)]
    assert len(receiver.requests()) == 2  # one request per event, from either replica
    assert _attempts_counted(system, "succeeded") >= succeeded_before + 2

    # Any delivery can be replayed: the same message again, same webhook-id.
    replay = hooks.post(f"{ENDPOINTS}/{created['id']}/deliveries/{deliveries[0]['id']}/replay")
    assert replay.status_code == 202, replay.text
    again = wait_for(receiver.requests, lambda r: len(r) == 3)[-1]
    assert again.headers["webhook-id"] == deliveries[0]["webhook_id"]
    assert verifier.verify(again.body, again.headers)["type"] == deliveries[0]["type"]


def test_a_receiver_down_for_a_while_gets_the_delivery_after_with_the_same_webhook_id(
    alice: tuple[httpx.Client, httpx.Client], receiver: Receiver
) -> None:
    api, hooks = alice
    created = _register(hooks, receiver.url, events=["completed"])
    receiver.stop()
    _generate(api)

    failed = wait_for(
        lambda: _deliveries(hooks, created["id"]),
        lambda d: len(d) == 1 and d[0]["tries"] >= 1,
    )[0]
    assert failed["status"] == "pending"
    assert failed["last_error"]
    receiver.start()

    got = wait_for(receiver.requests, lambda r: len(r) >= 1)
    assert {r.headers["webhook-id"] for r in got} == {failed["webhook_id"]}
    assert json.loads(got[0].body)["type"] == "generation.completed"
    Webhook(created["secret"]).verify(got[0].body, got[0].headers)
    attempts = wait_for(
        lambda: hooks.get(f"{ENDPOINTS}/{created['id']}/deliveries/{failed['id']}/attempts").json()[
            "items"
        ],
        lambda a: a and a[-1]["succeeded"],
    )
    assert not attempts[0]["succeeded"]
    assert attempts[0]["status_code"] is None
    assert attempts[0]["error"]
    assert hooks.get(f"{ENDPOINTS}/{created['id']}").json()["enabled"] is True


def test_an_always_failing_receiver_gets_its_endpoint_disabled_with_the_reason(
    system: GenbusSystem, alice: tuple[httpx.Client, httpx.Client], receiver: Receiver
) -> None:
    api, hooks = alice
    receiver.status = 500
    created = _register(hooks, receiver.url)
    _generate(api)

    endpoint = wait_for(
        lambda: hooks.get(f"{ENDPOINTS}/{created['id']}").json(),
        lambda e: e["enabled"] is False,
    )
    assert "HTTP 500" in endpoint["disabled_reason"]
    assert endpoint["consecutive_failures"] >= 4
    sent = len(receiver.requests())
    assert sent >= 4
    assert _attempts_counted(system, "retrying") >= 4

    # The caller fixes the receiver and enables the endpoint: what was pending is delivered.
    receiver.status = 200
    enabled = hooks.post(f"{ENDPOINTS}/{created['id']}/enable").json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
    wait_for(
        lambda: _deliveries(hooks, created["id"]),
        lambda d: len(d) == 2 and all(x["status"] == "succeeded" for x in d),
    )
    assert len(receiver.requests()) > sent


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://10.1.2.3/hook", "url_not_allowed"),
        ("http://169.254.169.254/latest/meta-data", "url_not_allowed"),
        ("http://[::ffff:192.168.0.1]/hook", "url_not_allowed"),
        ("ftp://example.com/hook", "invalid_url"),
        ("file:///etc/passwd", "invalid_url"),
    ],
)
def test_registration_refuses_urls_a_delivery_may_not_reach(
    alice: tuple[httpx.Client, httpx.Client], url: str, code: str
) -> None:
    _, hooks = alice
    response = hooks.post(ENDPOINTS, json={"url": url})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "url", "code": code, "message": response.json()["errors"][0]["message"]}
    ]


def test_endpoints_are_the_callers_own(
    system: GenbusSystem, keys: dict[str, str], alice: Any, receiver: Receiver
) -> None:
    _, hooks = alice
    created = _register(hooks, receiver.url)
    with httpx.Client(
        base_url=system.webhooks_url, headers={"Authorization": f"Bearer {keys['bob']}"}
    ) as bob:
        assert bob.get(f"{ENDPOINTS}/{created['id']}").json()["code"] == "endpoint_not_found"
        assert created["id"] not in {e["id"] for e in bob.get(ENDPOINTS).json()["items"]}
    with httpx.Client(base_url=system.webhooks_url) as nobody:
        unauthenticated = nobody.get(ENDPOINTS)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["code"] == "unauthorized"
        bad = nobody.get(ENDPOINTS, headers={"Authorization": "Bearer gbk_" + "x" * 43})
        assert bad.status_code == 401
