"""Dependencies of the HTTP routes: the runtime, the current user, a generation id."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from genbus.api.bootstrap import ApiRuntime
from genbus.api.domain.errors import GenerationNotFound


def get_runtime(request: Request) -> ApiRuntime:
    runtime: ApiRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ApiRuntime, Depends(get_runtime)]


def get_current_user(runtime: RuntimeDep) -> str:
    """The user a request acts as. Until API keys exist, every request is the configured
    default user; this is the one function to replace when authentication arrives."""
    return runtime.settings.default_user_id


CurrentUser = Annotated[str, Depends(get_current_user)]


def parse_generation_id(generation_id: str) -> UUID:
    """A path id that is not a UUID names no generation: 404, like a missing one."""
    try:
        return UUID(generation_id)
    except ValueError:
        raise GenerationNotFound(f"generation {generation_id[:100]!r} not found") from None


GenerationId = Annotated[UUID, Depends(parse_generation_id)]
