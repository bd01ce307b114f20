"""The web console under `/console` on the dispatcher's admin listener.

Server-rendered HTML (Jinja2 templates), vendored htmx and its SSE extension (`static/`, no
build step), behind the admin token: a login form, a signed session cookie and CSRF tokens
(`auth`). Served by the dispatcher because everything it shows and changes is the dispatcher's:
its queue, accounts and audit path, and the dead letters on its JetStream connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from nats.js import JetStreamContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from genbus.dispatcher.adapters.console_reads import ConsoleReads
from genbus.dispatcher.entrypoints.console import auth
from genbus.dispatcher.entrypoints.console.charts import bars
from genbus.dispatcher.entrypoints.console.pages import Pages
from genbus.dispatcher.entrypoints.console.views import Views
from genbus.dispatcher.service_layer.base_urls import BaseUrlPolicy
from genbus.dispatcher.service_layer.dead_letters import DeadLetters
from genbus.dispatcher.service_layer.unit_of_work import UowFactory
from genbus.providers import CredentialCipher

HERE = Path(__file__).resolve().parent


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["bars"] = bars
    return env


def console_routes(
    *,
    token: str,
    name: str,
    development: bool,
    uow: UowFactory,
    reads: ConsoleReads,
    dead_letters: DeadLetters,
    js: Callable[[], JetStreamContext],
    cipher: CredentialCipher,
    policy: BaseUrlPolicy,
    on_change: Callable[[], None],
    stop: asyncio.Event,
) -> list[BaseRoute]:
    """The `/console` mount, or nothing without an admin token."""
    if not token:
        return []
    pages = Pages(
        views=Views(uow=uow, reads=reads, dead_letters=dead_letters, js=js),
        templates=templates(),
        token=token,
        name=name,
        cipher=cipher,
        policy=policy,
        on_change=on_change,
        stop=stop,
    )

    def page(name: str, title: str, query: bool = False) -> auth.Endpoint:
        async def endpoint(request: Request) -> Response:
            suffix = f"?{request.url.query}" if query and request.url.query else ""
            return await pages.page(request, name, title, suffix)

        return endpoint

    async def generation(request: Request) -> Response:
        gid = request.path_params["generation_id"]
        request.scope["query_string"] = f"id={gid}".encode()
        return await pages.page(request, "generation", f"generation {gid}", f"?id={gid}")

    g = auth.guarded
    routes: list[BaseRoute] = [
        Route("/login", g(pages.login_form, login=False), methods=["GET"]),
        Route("/login", g(pages.login, login=False), methods=["POST"]),
        Route("/logout", g(pages.logout), methods=["POST"]),
        Route("/", g(page("overview", "overview")), methods=["GET"]),
        Route("/accounts", g(page("accounts", "accounts")), methods=["GET"]),
        Route("/accounts/{account_id}/{action}", g(pages.account_action), methods=["POST"]),
        Route("/deadletters", g(page("deadletters", "dead letters")), methods=["GET"]),
        Route("/deadletters/replay", g(pages.replay), methods=["POST"]),
        Route("/deadletters/{sequence}/replay", g(pages.replay), methods=["POST"]),
        Route("/generations", g(page("generations", "generations", True)), methods=["GET"]),
        Route("/generations/{generation_id}", g(generation), methods=["GET"]),
        Route("/stream/{page}", g(pages.stream), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes, middleware=[auth.session_middleware(token, secure=not development)]
    )
    return [Mount("/console", app=app)]
