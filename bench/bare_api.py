"""The floor under genbus's POST: a bare FastAPI app with the same shape of request and response
(a validated body in, a 201 JSON body out) and nothing else (no auth, database or middlewares).
`bench.scenarios.http_floor` serves it with uvicorn as the api is served and measures its CPU."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI()


class Draft(BaseModel):
    operation_type: Literal["text_to_video", "image_to_video", "text_to_image"]
    provider_id: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=5, ge=0, le=10)


class Created(BaseModel):
    id: UUID
    status: str
    operation_type: str
    provider_id: str
    params: dict[str, Any]
    priority: int
    created_at: datetime


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/generations", status_code=201)
async def create(draft: Draft) -> Created:
    return Created(
        id=uuid4(),
        status="pending",
        created_at=datetime.now(UTC),
        **draft.model_dump(),
    )
