"""Input media a job names, fetched as a real provider does (`fetch_inputs`): each input URL
must answer 200, else the submission is refused. What was fetched is kept for tests
(`GET /_sim/inputs`): the URL, its status, size and sha256."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from genbus.provider_sim.errors import ErrorCode, SimError

#: The most of one input the sim reads.
MAX_INPUT_BYTES = 64 * 1024 * 1024


class InputLog:
    """Every input fetch since the last reset, oldest first."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def clear(self) -> None:
        self.records = []


def input_urls(body: object) -> list[tuple[str, str]]:
    """(role, url) of each input of a job request body (`inputs: [{role, url}]`)."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return []
    found = []
    for item in body["inputs"]:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            found.append((str(item.get("role", "")), item["url"]))
    return found


async def fetch_inputs(body: object, log: InputLog, *, timeout_s: float = 10.0) -> None:
    """GET every input URL; one that does not answer 200 refuses the job (400)."""
    urls = input_urls(body)
    if not urls:
        return
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client:
        for role, url in urls:
            record: dict[str, Any] = {"role": role, "url": url}
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                record.update(status=None, error=repr(exc))
                log.records.append(record)
                raise SimError(ErrorCode.INVALID_REQUEST, f"input {role!r} unreachable") from exc
            content = response.content[:MAX_INPUT_BYTES]
            record.update(
                status=response.status_code,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content_type=response.headers.get("content-type"),
            )
            log.records.append(record)
            if response.status_code != 200:
                raise SimError(
                    ErrorCode.INVALID_REQUEST,
                    f"input {role!r} answered {response.status_code}, not 200",
                )
