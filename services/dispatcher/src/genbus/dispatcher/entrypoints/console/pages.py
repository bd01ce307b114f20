"""The console's pages, their live fragments (SSE), and the forms that change things.

Every page is a full HTML document whose live part is re-rendered on the server and pushed over
Server-Sent Events (`/console/stream/<page>`) whenever it changes; htmx's SSE extension swaps it
in. Changes go through the same audited service-layer calls as the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from jinja2 import Environment
from nats.js.errors import NotFoundError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from genbus.dispatcher.entrypoints.console import auth
from genbus.dispatcher.entrypoints.console.views import Views
from genbus.dispatcher.service_layer import accounts, audit
from genbus.dispatcher.service_layer.accounts import AccountChanges
from genbus.dispatcher.service_layer.base_urls import BaseUrlPolicy
from genbus.providers import CredentialCipher
from genbus.runtime.logging import get_logger

log = get_logger(__name__)
#: How often a live fragment is re-rendered (it is sent only when it changed).
REFRESH_S = 1.0
Fragment = Callable[[Request], Awaitable[dict[str, Any] | None]]


@dataclass
class Pages:
    views: Views
    templates: Environment
    token: str
    name: str
    cipher: CredentialCipher
    policy: BaseUrlPolicy
    on_change: Callable[[], None]
    stop: asyncio.Event

    # -- rendering

    def _html(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        context = {
            "request": request,
            "csrf": auth.csrf_token(request),
            "who": request.session.get("who"),
            "flash": request.session.pop("flash", None),
            **values,
        }
        body = self.templates.get_template(template).render(context)
        return HTMLResponse(body, status_code=status)

    def _fragment(self, page: str, data: Mapping[str, Any], request: Request) -> str:
        context = {"csrf": auth.csrf_token(request), **data}
        return self.templates.get_template(f"_{page}.html").render(context)

    def _fragments(self) -> dict[str, Fragment]:
        async def overview(_: Request) -> dict[str, Any]:
            return {"o": await self.views.overview()}

        async def accounts_(_: Request) -> dict[str, Any]:
            return {"accounts": await self.views.accounts()}

        async def deadletters(_: Request) -> dict[str, Any]:
            return {"letters": await self.views.letters()}

        async def generations(request: Request) -> dict[str, Any]:
            return await self.views.generations(request.query_params)

        async def generation(request: Request) -> dict[str, Any] | None:
            return await self.views.timeline(_uuid(request.query_params.get("id", "")))

        return {
            "overview": overview,
            "accounts": accounts_,
            "deadletters": deadletters,
            "generations": generations,
            "generation": generation,
        }

    async def page(
        self, request: Request, page: str, title: str, stream_query: str = ""
    ) -> Response:
        data = await self._fragments()[page](request)
        if data is None:
            return self._html(request, "missing.html", status=404, title="not found")
        return self._html(
            request,
            f"{page}.html",
            title=title,
            page=page,
            live=self._fragment(page, data, request),
            stream=f"/console/stream/{page}{stream_query}",
            **data,
        )

    async def stream(self, request: Request) -> Response:
        page = request.path_params["page"]
        fragment = self._fragments().get(page)
        if fragment is None:
            return HTMLResponse("no such page", status_code=404)

        async def events() -> AsyncIterator[dict[str, str]]:
            last = None
            while not self.stop.is_set() and not await request.is_disconnected():
                try:
                    data = await fragment(request)
                    html = self._fragment(page, data or {}, request)
                except Exception as exc:  # shown in place; the stream goes on
                    log.warning("console fragment failed", page=page, error=repr(exc))
                    html = f'<p class="problem">could not refresh: {type(exc).__name__}</p>'
                if html != last:
                    last = html
                    yield {"event": "update", "data": html}
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), REFRESH_S)

        return EventSourceResponse(events(), ping=15)

    # -- signing in

    async def login_form(self, request: Request) -> Response:
        return self._html(request, "login.html", title="sign in")

    async def login(self, request: Request) -> Response:
        form = await request.form()
        presented = form.get("token")
        if isinstance(presented, str) and auth.token_matches(presented, self.token):
            auth.sign_in(request, self._actor(request))
            return RedirectResponse("/console/", status_code=303)
        log.warning("console sign-in refused", client=_client(request))
        return self._html(
            request, "login.html", status=401, title="sign in", error="that is not the admin token"
        )

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/console/login", status_code=303)

    def _actor(self, request: Request) -> str:
        return audit.admin_actor(self.name, _client(request)) + " (console)"

    # -- changes

    async def account_action(self, request: Request) -> Response:
        account_id, action = request.path_params["account_id"], request.path_params["action"]
        form = await request.form()
        actor = self._actor(request)
        try:
            if action == "disable":
                reason = str(form.get("reason") or "").strip() or "disabled from the console"
                await accounts.disable_account(self.views.uow(), account_id, reason, actor=actor)
            elif action == "enable":
                await accounts.enable_account(self.views.uow(), account_id, actor=actor)
            elif action == "caps":
                values = {
                    "max_concurrent": _number(form.get("max_concurrent")),
                    "daily_cap": _number(form.get("daily_cap")),
                }
                if values["max_concurrent"] is None:
                    raise accounts.InvalidAccount("max_concurrent is required")
                await accounts.update_account(
                    self.views.uow(),
                    self.cipher,
                    account_id,
                    AccountChanges(values=values),
                    actor=actor,
                    policy=self.policy,
                )
            else:
                return HTMLResponse("no such action", status_code=404)
            self.on_change()
            request.session["flash"] = f"{account_id}: {action} done"
        except accounts.AccountError as exc:
            request.session["flash"] = f"{account_id}: {exc.code}: {exc}"
        except ValueError:
            request.session["flash"] = f"{account_id}: caps must be whole numbers"
        return RedirectResponse("/console/accounts", status_code=303)

    async def replay(self, request: Request) -> Response:
        raw = request.path_params.get("sequence")
        actor = self._actor(request)
        try:
            if raw is None:
                done = await self.views.dead_letters.replay_all(actor=actor)
                request.session["flash"] = f"replayed {len(done)} dead letters"
            else:
                replayed = await self.views.dead_letters.replay(int(raw), actor=actor)
                request.session["flash"] = f"replayed {raw} on {replayed['subject']}"
        except (NotFoundError, ValueError):
            request.session["flash"] = f"no dead letter {raw}"
        return RedirectResponse("/console/deadletters", status_code=303)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _number(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text else None


def _uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        return UUID(int=0)
