"""The HTTP sender against real local receivers: SSRF refusals after DNS resolution, no
redirects followed, bounded response reads and time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Iterator, Sequence

import pytest
from standardwebhooks.webhooks import Webhook
from webhook_receiver import Receiver

from genbus.devstack.ports import free_port
from genbus.webhooks.adapters.sender import HttpSender
from genbus.webhooks.domain.addresses import AddressPolicy, IpAddress
from genbus.webhooks.domain.model import new_signing_secret

pytestmark = pytest.mark.integration

LOOPBACK = AddressPolicy.from_strings(["127.0.0.0/8"])
PAYLOAD = {"type": "generation.completed", "data": {"generation_id": "g"}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


async def _send(sender: HttpSender, url: str, secret: str = "") -> tuple[int | None, str | None]:
    try:
        result = await sender.send(url, "msg_1", secret or new_signing_secret(), PAYLOAD)
    finally:
        await sender.aclose()
    return result.status_code, result.error


async def test_an_allowed_receiver_gets_a_verifiable_request(receiver: Receiver) -> None:
    secret = new_signing_secret()
    assert await _send(HttpSender(LOOPBACK), receiver.url, secret) == (204, None)
    (got,) = receiver.requests()
    assert got.path == "/hook"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert Webhook(secret).verify(got.body, got.headers) == PAYLOAD


async def test_loopback_is_refused_without_an_allowance(receiver: Receiver) -> None:
    status, error = await _send(HttpSender(AddressPolicy()), receiver.url)
    assert status is None
    assert error is not None
    assert error.startswith("url_not_allowed")
    assert receiver.requests() == []


async def test_a_name_resolving_to_a_private_address_is_refused_after_resolution(
    receiver: Receiver,
) -> None:
    """`localhost` is not an address: the check happens on what it resolves to."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> Sequence[IpAddress]:
        asked.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    url = f"http://localhost:{receiver.port}/hook"
    status, error = await _send(HttpSender(AddressPolicy(), resolver=resolver), url)
    assert (status, asked) == (None, ["localhost"])
    assert error is not None
    assert "resolves to 127.0.0.1" in error
    assert receiver.requests() == []
    # With the allowance, the same name is delivered to the checked address.
    assert await _send(HttpSender(LOOPBACK, resolver=resolver), url) == (204, None)
    assert receiver.requests()[0].headers["host"] == f"localhost:{receiver.port}"


@pytest.mark.parametrize("location", ["http://10.1.2.3/steal", "http://127.0.0.1:{port}/hook"])
async def test_redirects_are_never_followed(receiver: Receiver, location: str) -> None:
    target = Receiver().start()
    try:
        receiver.status, receiver.location = 302, location.format(port=target.port)
        status, error = await _send(HttpSender(LOOPBACK), receiver.url)
        assert (status, error) == (302, "HTTP 302")
        assert len(receiver.requests()) == 1
        assert target.requests() == []
    finally:
        target.stop()


async def test_a_slow_or_endless_answer_is_bounded() -> None:
    """A receiver that sends headers and then trickles an endless body: the read stops at the
    size bound; one that never answers: the attempt ends at the time bound."""
    server = socket.create_server(("127.0.0.1", free_port()))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                if conn.getsockname()[1] == port and not stop.is_set():
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    try:
                        while not stop.is_set():
                            conn.sendall(b"1000\r\n" + b"x" * 4096 + b"\r\n")
                    except OSError:
                        pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        sender = HttpSender(LOOPBACK, timeout_s=5.0, max_response_bytes=64 * 1024)
        started = asyncio.get_running_loop().time()
        assert await _send(sender, f"http://127.0.0.1:{port}/") == (200, None)
        assert asyncio.get_running_loop().time() - started < 5.0
    finally:
        stop.set()
        thread.join()
        server.close()

    silent = socket.create_server(("127.0.0.1", free_port()))  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        status, error = await _send(HttpSender(LOOPBACK, timeout_s=0.5), url)
        assert status is None
        assert error is not None
        assert error.startswith("timeout")
    finally:
        silent.close()
