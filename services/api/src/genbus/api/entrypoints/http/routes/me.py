"""`GET /api/v1/me`: who the caller's key belongs to. Other services (the webhooks service)
authenticate their callers by asking this with the caller's own key."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from genbus.api.domain.api_keys import display_prefix
from genbus.api.entrypoints.http.auth import CurrentPrincipal, bearer
from genbus.api.entrypoints.http.problems import problem_responses

router = APIRouter(
    prefix="/api/v1", tags=["identity"], responses=problem_responses(401, 422, 429, 503)
)


class Me(BaseModel):
    user_id: str
    key_id: UUID | None = Field(description="null for an anonymous call (local development)")
    key_prefix: str | None = Field(description="the key's first characters, as listed by keys list")
    admin: bool


@router.get("/me", operation_id="getMe")
async def me(
    principal: CurrentPrincipal,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Me:
    """The caller: the user its API key belongs to."""
    return Me(
        user_id=principal.user_id,
        key_id=principal.key_id,
        key_prefix=None if credentials is None else display_prefix(credentials.credentials),
        admin=principal.admin,
    )
