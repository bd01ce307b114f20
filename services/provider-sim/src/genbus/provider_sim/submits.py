"""Submit routes as a slow or unreliable provider runs them: latency, late or lost answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from genbus.provider_sim.deps import sim_state
from genbus.provider_sim.state import Submission

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Coroutine[Any, Any, Response]])


def submit_handler(handler: Handler) -> Handler:
    """`handler` (dependencies included) inside `submits_in_progress`, after `submit_latency_ms`.

    The body is read first: once a request counts as in progress the sim has all of it and
    completes it (job created) even if the client goes away meanwhile, as a real provider would.
    """

    async def handle(request: Request) -> Response:
        state = sim_state(request)
        await request.body()  # cached on `request`, where the endpoint reads it again
        with state.submitting():
            latency_ms = state.config.submit_latency_ms
            if latency_ms:
                await asyncio.sleep(latency_ms / 1000)
            return await handler(request)

    return handle


class SubmitRoute(APIRoute):
    """A route that creates jobs or uploads inputs: see `submit_handler`."""

    def get_route_handler(self) -> Handler:
        return submit_handler(super().get_route_handler())


def post_submit(
    router: APIRouter,
    path: str,
    *,
    operation_id: str,
    status_code: int | None = None,
    route_class: type[APIRoute] = SubmitRoute,
) -> Callable[[Endpoint], Endpoint]:
    """Decorator: the endpoint answers `POST path` on `router` through a submit route class."""

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            status_code=status_code,
            operation_id=operation_id,
            route_class_override=route_class,
        )
        return endpoint

    return register


async def answer_submission(submission: Submission, answer: Response) -> Response:
    """`answer` as the submission's fate wants it: now, `answer_delay_s` late, or lost."""
    if submission.answer_delay_s:
        await asyncio.sleep(submission.answer_delay_s)
    if submission.lose_answer:
        return DroppedResponse(answer)
    return answer


class DroppedResponse(Response):
    """`answer`'s status line and headers (a Content-Length among them), then no body at all.

    The app returns mid-response, and uvicorn then closes the connection ("ASGI callable
    returned without completing response"): the client's read fails on a body cut short
    (httpx: `RemoteProtocolError`), it never gets a usable response.
    """

    def __init__(self, answer: Response) -> None:
        super().__init__(status_code=answer.status_code)
        self.raw_headers = list(answer.raw_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
