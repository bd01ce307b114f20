from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from typing import ClassVar
from uuid import uuid4

import httpx
import pytest

from genbus.providers import (
    Behaviour,
    Credentials,
    HttpAdapter,
    ProviderUnavailable,
    SubmitGuarantees,
    SubmitOutcomeUnknown,
    SubmitRequest,
    UnsupportedOperation,
    parse_retry_after,
)

from .conftest import Handler

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


# -- _send: which failures leave a job-creating request's outcome unknown --------------------

URL = "http://provider.test/v1/jobs"


class _Adapter(HttpAdapter):
    provider_id: ClassVar[str] = "test"
    operations: ClassVar[frozenset[str]] = frozenset({"text_to_video"})
    submit_guarantees: ClassVar[SubmitGuarantees] = SubmitGuarantees(
        idempotent=False, findable_by_reference=False
    )


@pytest.fixture
async def make_adapter() -> AsyncIterator[Callable[[Handler], _Adapter]]:
    made: list[_Adapter] = []

    def make(handler: Handler) -> _Adapter:
        adapter = _Adapter(transport=httpx.MockTransport(handler))
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


MakeAdapter = Callable[[Handler], _Adapter]


def raising(exc_type: type[httpx.RequestError], message: str = "boom") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(message, request=request)

    return handler


#: Never sent: the connection was not there yet (or the request was refused locally).
NOT_SENT: list[type[httpx.RequestError]] = [
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
]
#: Maybe sent: the request was (being) written, and no readable answer came back.
MAYBE_SENT: list[type[httpx.RequestError]] = [
    httpx.WriteTimeout,
    httpx.WriteError,
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
    httpx.DecodingError,
]


@pytest.mark.parametrize("creates_job", [False, True])
@pytest.mark.parametrize("exc_type", NOT_SENT)
async def test_a_request_that_was_never_sent_is_provider_unavailable(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    exc_type: type[httpx.RequestError],
    creates_job: bool,
) -> None:
    adapter = make_adapter(raising(exc_type))

    with pytest.raises(ProviderUnavailable) as info:
        await adapter._send("POST", URL, credentials=credentials, creates_job=creates_job)

    assert type(info.value) is ProviderUnavailable
    assert type(info.value.__cause__) is exc_type


@pytest.mark.parametrize("exc_type", MAYBE_SENT)
async def test_a_job_creating_request_that_may_have_been_sent_is_outcome_unknown(
    make_adapter: MakeAdapter, credentials: Credentials, exc_type: type[httpx.RequestError]
) -> None:
    adapter = make_adapter(raising(exc_type))

    with pytest.raises(SubmitOutcomeUnknown) as info:
        await adapter._send("POST", URL, credentials=credentials, creates_job=True)

    assert info.value.code == "submit_outcome_unknown"
    assert info.value.behaviour is Behaviour.RETRY  # what polling paths rely on
    assert type(info.value.__cause__) is exc_type
    assert "may have been created" in info.value.message


@pytest.mark.parametrize("exc_type", MAYBE_SENT)
async def test_any_other_request_that_may_have_been_sent_stays_provider_unavailable(
    make_adapter: MakeAdapter, credentials: Credentials, exc_type: type[httpx.RequestError]
) -> None:
    adapter = make_adapter(raising(exc_type))

    with pytest.raises(ProviderUnavailable) as info:
        await adapter._send("GET", URL, credentials=credentials)

    assert type(info.value) is ProviderUnavailable


def test_the_two_lists_cover_every_concrete_httpx_request_error() -> None:
    # A new httpx error class must be placed on one side deliberately.
    def leaves(cls: type[httpx.RequestError]) -> set[type[httpx.RequestError]]:
        subclasses = cls.__subclasses__()
        return {cls} if not subclasses else set().union(*(leaves(sub) for sub in subclasses))

    # CloseError: httpx 0.28's transports never raise it; TooManyRedirects: redirects are off.
    # Only httpx's own classes: other packages (httpx-sse's SSEError) subclass them too.
    own = {c for c in leaves(httpx.RequestError) if c.__module__.split(".")[0] == "httpx"}
    concrete = own - {httpx.CloseError, httpx.TooManyRedirects}
    assert set(NOT_SENT) | set(MAYBE_SENT) == concrete
    assert not set(NOT_SENT) & set(MAYBE_SENT)


async def test_an_undecodable_answer_is_caught_as_httpx_raises_it(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    adapter = make_adapter(
        lambda _: httpx.Response(201, headers={"Content-Encoding": "gzip"}, content=b"not gzip")
    )

    with pytest.raises(SubmitOutcomeUnknown):
        await adapter._send("POST", URL, credentials=credentials, creates_job=True)
    with pytest.raises(ProviderUnavailable) as info:
        await adapter._send("GET", URL, credentials=credentials)
    assert type(info.value) is ProviderUnavailable


@pytest.mark.parametrize("status", [502, 504])
async def test_a_gateway_that_lost_the_answer_to_a_job_creating_request_is_outcome_unknown(
    make_adapter: MakeAdapter, credentials: Credentials, status: int
) -> None:
    adapter = make_adapter(
        lambda _: httpx.Response(status, text="upstream gone", headers={"Retry-After": "5"})
    )

    with pytest.raises(SubmitOutcomeUnknown) as info:
        await adapter._send("POST", URL, credentials=credentials, creates_job=True)

    assert f"HTTP {status}" in info.value.message
    assert info.value.retry_after_s == 5.0
    # Any other call gets the response back, for the adapter to map.
    response = await adapter._send("POST", URL, credentials=credentials)
    assert response.status_code == status


@pytest.mark.parametrize("status", [200, 201, 400, 429, 500, 503])
async def test_other_answers_to_a_job_creating_request_are_returned(
    make_adapter: MakeAdapter, credentials: Credentials, status: int
) -> None:
    adapter = make_adapter(lambda _: httpx.Response(status))

    response = await adapter._send("POST", URL, credentials=credentials, creates_job=True)

    assert response.status_code == status


@pytest.mark.parametrize("creates_job", [False, True])
@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ReadError])
async def test_network_error_messages_are_redacted(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    api_key: str,
    exc_type: type[httpx.RequestError],
    creates_job: bool,
) -> None:
    adapter = make_adapter(raising(exc_type, f"failed for key {api_key}"))

    with pytest.raises(ProviderUnavailable) as info:
        await adapter._send("POST", URL, credentials=credentials, creates_job=creates_job)

    assert "failed for key ***" in info.value.message
    assert api_key not in str(info.value)


async def test_find_by_reference_is_unsupported_by_default(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    adapter = make_adapter(handler)
    request = SubmitRequest(
        generation_id=uuid4(),
        operation_type="text_to_video",
        params={},
        idempotency_key="k",
        credentials=credentials,
    )

    with pytest.raises(UnsupportedOperation, match="test"):
        await adapter.find_by_reference(request)
    assert seen == []


# -- over real sockets: httpx raises what the lists above expect -----------------------------


async def _hang_up_after_reading(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await reader.read()  # until the client gives up and closes
    writer.close()


@pytest.mark.parametrize(
    ("server", "cause"),
    [(_hang_up_after_reading, httpx.RemoteProtocolError), (_never_answer, httpx.ReadTimeout)],
)
async def test_a_server_that_read_the_request_and_never_answered_leaves_it_unknown(
    credentials: Credentials,
    server: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    cause: type[httpx.RequestError],
) -> None:
    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with _Adapter(timeout=httpx.Timeout(0.3)) as adapter:
            url = f"http://127.0.0.1:{port}/v1/jobs"
            with pytest.raises(SubmitOutcomeUnknown) as info:
                await adapter._send("POST", url, credentials=credentials, json={}, creates_job=True)
    finally:
        listener.close()
        await listener.wait_closed()
    assert type(info.value.__cause__) is cause


async def test_a_refused_connection_never_sent_the_request(credentials: Credentials) -> None:
    # Bound but not listening: the kernel refuses connections while we hold the port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/jobs"
        async with _Adapter() as adapter:
            with pytest.raises(ProviderUnavailable) as info:
                await adapter._send("POST", url, credentials=credentials, creates_job=True)
    assert type(info.value) is ProviderUnavailable
    assert type(info.value.__cause__) is httpx.ConnectError
