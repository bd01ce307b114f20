"""Test and admin endpoints (no auth): read and change the config, read stats, reset."""

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from genbus.provider_sim.deps import StateDep, input_log
from genbus.provider_sim.errors import ErrorCode, SimError

router = APIRouter(prefix="/_sim", tags=["sim admin"])


@router.get("/config", operation_id="get_sim_config")
async def get_config(state: StateDep) -> JSONResponse:
    return JSONResponse(state.config.model_dump(mode="json"))


@router.put("/config", operation_id="update_sim_config")
async def update_config(request: Request, state: StateDep) -> JSONResponse:
    try:
        patch: Any = json.loads(await request.body())
    except ValueError as exc:
        raise SimError(ErrorCode.INVALID_REQUEST, "the body is not valid JSON") from exc
    if not isinstance(patch, dict):
        raise SimError(ErrorCode.INVALID_REQUEST, "the body must be a JSON object")
    return JSONResponse(state.update_config(patch).model_dump(mode="json"))


@router.get("/stats", operation_id="get_sim_stats")
async def get_stats(state: StateDep) -> JSONResponse:
    return JSONResponse(state.stats())


@router.get("/inputs", operation_id="get_sim_inputs")
async def get_inputs(request: Request) -> JSONResponse:
    """The input URLs fetched since the last reset (with `fetch_inputs` on)."""
    return JSONResponse({"data": input_log(request).records})


@router.post("/reset", operation_id="reset_sim")
async def reset(request: Request, state: StateDep) -> JSONResponse:
    """Forget jobs, counters, fetched inputs and the output files (their URLs 404)."""
    state.reset()
    input_log(request).clear()
    return JSONResponse({"reset": True})
