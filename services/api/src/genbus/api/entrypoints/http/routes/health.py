"""`/healthz` (the process answers) and `/readyz` (Postgres and NATS are reachable)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from genbus.api.entrypoints.http.deps import RuntimeDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool]


@router.get("/healthz", operation_id="healthz")
async def healthz() -> Health:
    """The process answers (liveness)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Postgres or NATS is unreachable"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Postgres answers a query and NATS is connected (readiness)."""
    checks = await runtime.readiness()
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
