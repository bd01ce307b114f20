"""FastAPI dependencies shared by the routes: the simulator state and the authenticated key."""

import asyncio
from typing import Annotated, cast

from fastapi import Depends, Request

from genbus.provider_sim.auth import authenticate
from genbus.provider_sim.inputs import InputLog
from genbus.provider_sim.state import SimState

# Dependencies are async on purpose: sync ones would run in the thread pool on every request.


def sim_state(request: Request) -> SimState:
    """The simulator state of the app serving `request`."""
    return cast(SimState, request.app.state.sim)


def input_log(request: Request) -> InputLog:
    """The inputs fetched by the app serving `request`."""
    return cast(InputLog, request.app.state.inputs)


async def _get_state(request: Request) -> SimState:
    return sim_state(request)


StateDep = Annotated[SimState, Depends(_get_state)]


async def _get_api_key(request: Request, state: StateDep) -> str:
    latency_ms = state.config.latency_ms
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)
    return authenticate(request.headers, state.config.keys)


ApiKeyDep = Annotated[str, Depends(_get_api_key)]


async def hang_status_if_told(state: SimState, api_key: str) -> None:
    """The `status_hang_keys` knob: a status call of such a key waits `status_hang_ms`."""
    config = state.config
    if api_key in config.status_hang_keys:
        await asyncio.sleep(config.status_hang_ms / 1000)
