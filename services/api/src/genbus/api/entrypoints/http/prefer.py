"""The `Prefer: wait=N` request header (RFC 7240) of sync mode, and answering once the
generation is terminal or N seconds have passed (`service_layer.waiting`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Response

from genbus.api.bootstrap import ApiRuntime
from genbus.api.domain.api_keys import Principal
from genbus.api.domain.errors import InvalidRequest
from genbus.api.entrypoints.http import views
from genbus.api.entrypoints.http.schemas import GenerationPublic
from genbus.api.service_layer import waiting
from genbus.runtime.problems import FieldError

PREFERENCE_APPLIED = "Preference-Applied"

PREFER_DOC = (
    f"Sync mode: `wait=N` (0..{waiting.MAX_WAIT_S} seconds; more is treated as "
    f"{waiting.MAX_WAIT_S}) holds the answer until the generation is terminal or N seconds "
    "have passed, then returns it as it is then. `Preference-Applied: wait=N` says the wait "
    "was applied; without it (the server is at its bound of waiting requests) the answer came "
    "at once. Other preferences are ignored."
)

PREFERENCE_APPLIED_DOC = {
    "description": "`wait=N` when the request's `Prefer: wait` was applied",
    "schema": {"type": "string"},
}


def parse_wait(prefer: str | None) -> int | None:
    """The `wait` preference of a Prefer header, clamped to `MAX_WAIT_S` (None: none asked);
    `InvalidRequest` when its value is not a number of seconds."""
    if prefer is None:
        return None
    for preference in prefer.split(","):
        token, _, value = preference.split(";", 1)[0].partition("=")
        if token.strip().lower() != "wait":
            continue
        seconds = value.strip().strip('"')
        if not seconds.isascii() or not seconds.isdigit() or len(seconds) > 9:
            raise InvalidRequest(
                [
                    FieldError(
                        "Prefer",
                        "invalid",
                        f"wait must be a whole number of seconds (0..{waiting.MAX_WAIT_S})",
                    )
                ]
            )
        return min(int(seconds), waiting.MAX_WAIT_S)
    return None


async def wait_preference(
    prefer: Annotated[str | None, Header(alias="Prefer", description=PREFER_DOC)] = None,
) -> int | None:
    return parse_wait(prefer)


WaitPreference = Annotated[int | None, Depends(wait_preference)]


async def when_done(
    runtime: ApiRuntime,
    principal: Principal,
    generation: GenerationPublic,
    wait_s: int | None,
    response: Response,
) -> GenerationPublic:
    """`generation` as it is once terminal, or after `wait_s` seconds (None: at once)."""
    if wait_s is None:
        return generation
    with runtime.waits.hold() as admitted:
        if not admitted:
            return generation
        response.headers[PREFERENCE_APPLIED] = f"wait={wait_s}"
        await waiting.wait_until_terminal(
            runtime.feeds,
            user_id=generation.user_id,
            generation_id=generation.id,
            status=generation.status,
            wait_s=wait_s,
        )
    if generation.status.terminal:
        return generation
    # Read again whether or not it ended: its state may have moved on meanwhile.
    return await views.get(runtime, principal, generation.id)
