"""`/healthz` (the process answers) and `/readyz` (Postgres and NATS are reachable)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from genbus.api.entrypoints.http.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks = await runtime.readiness()
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
