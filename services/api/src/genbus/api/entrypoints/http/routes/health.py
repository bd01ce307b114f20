"""`/healthz` (the process answers) and `/readyz` (Postgres is reachable: the api can serve).

NATS is reported in `/readyz`'s checks (and `genbus_dependency_up`) but does not make the api
unready: requests are stored with their events in the outbox, which the relay publishes once
NATS is back, and reads need only Postgres. Taking every api replica out of service on a NATS
outage would turn a delay into an outage.
"""

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
    responses={503: {"model": Readiness, "description": "Postgres is unreachable"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Postgres answers a query (readiness); `checks` also says whether NATS is connected."""
    checks = await runtime.readiness()
    ready = checks["postgres"]
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
