"""Many live-status connections at once, over raw sockets (cheap enough for thousands), and
the api's own counters of what they cost."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

import httpx

from tests.faults.harness import text_to_video

#: Connections being opened at once.
OPENING = 200


class StreamStorm:
    """`/api/v1/events` streams of one key: the ones the api let open, and its refusals."""

    def __init__(self, api_url: str, key: str) -> None:
        parts = urlsplit(api_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._key = key
        self._streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        #: 429s by code: `too_many_streams` (the stream cap), `rate_limited` (too many of the
        #: key's requests in progress at once).
        self.refused: dict[str, int] = {}
        self.other: dict[int, int] = {}
        self.retry_after_ok = True
        self.refusal_s: list[float] = []

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def summary(self) -> str:
        slowest = max(self.refusal_s, default=0.0)
        return (
            f"open={self.open_streams} refused (429)={self.refused} other={self.other} "
            f"slowest refusal={slowest * 1000:.0f}ms"
        )

    async def open(self, count: int) -> None:
        gate = asyncio.Semaphore(OPENING)

        async def one() -> None:
            async with gate:
                await self._open_one()

        await asyncio.gather(*(one() for _ in range(count)))

    async def _open_one(self) -> None:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        request = (
            f"GET /api/v1/events HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Authorization: Bearer {self._key}\r\nAccept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if status == 200:
            self._streams.append((reader, writer))
            return
        self.refusal_s.append(time.monotonic() - started)
        body = await _body_start(reader)
        code = next((c for c in ("too_many_streams", "rate_limited") if c in body), None)
        if status == 429 and code is not None:
            self.refused[code] = self.refused.get(code, 0) + 1
            retry_after = _header(head, "retry-after")
            if retry_after is None or not 1 <= int(retry_after) <= 60:
                self.retry_after_ok = False
        else:
            self.other[status] = self.other.get(status, 0) + 1
        writer.close()

    async def events_seen(self, *, sample: int, at_least: int, timeout: float = 30.0) -> int:
        """Reads `sample` streams until each has shown `at_least` events (or `timeout`):
        how many they showed in all."""

        async def count(reader: asyncio.StreamReader) -> int:
            seen = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while seen < at_least:
                        line = await reader.readline()
                        if not line:
                            break
                        if line.startswith(b"event: generation"):
                            seen += 1
            return seen

        return sum(await asyncio.gather(*(count(r) for r, _ in self._streams[:sample])))

    async def close(self) -> None:
        for _, writer in self._streams:
            writer.close()
        for _, writer in self._streams:
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._streams = []


async def _body_start(reader: asyncio.StreamReader) -> str:
    with contextlib.suppress(Exception):
        return (await asyncio.wait_for(reader.read(2048), 5)).decode("latin-1")
    return ""


def _header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def timed_requests(api_url: str, key: str, *, count: int) -> list[float]:
    """Seconds each of `count` requests of another user took: a create, then a list, in turn."""
    took: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as client:
        for index in range(count):
            started = time.monotonic()
            if index % 2:
                response = await client.get("/api/v1/generations", params={"limit": 10})
            else:
                response = await client.post(
                    "/api/v1/generations", json=text_to_video("sim", f"other {index}")
                )
            took.append(time.monotonic() - started)
            assert response.status_code in (200, 201), response.text
    return took


async def live_reads(api_url: str) -> dict[str, float]:
    """`genbus_api_live_reads_total` by kind, from the api's /metrics."""
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("genbus_api_live_reads_total{"):
            labels, _, value = line.rpartition(" ")
            kind = labels.split('kind="', 1)[1].split('"', 1)[0]
            found[kind] = float(value)
    return found
