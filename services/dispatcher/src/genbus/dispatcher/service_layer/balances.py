"""Provider balances: each account's credits left, read from its provider's API (where it has
one: Pixverse, the sim) every `balance_refresh_s`, and at once after a provider said an
account's credits are spent (`quota_exhausted`). The balance is the account row's `credits`:
an account that cannot pay for a job (below `MIN_CREDITS`) is not offered work, and an
exhausted one that can pay again is active again."""

from __future__ import annotations

import asyncio
import contextlib

from genbus.dispatcher.dependencies import Deps
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


async def refresh_balances(deps: Deps) -> dict[str, int]:
    """Read every active or exhausted account's balance; the balances read, by account."""
    uow = deps.uow()
    async with uow:
        targets = await uow.accounts.balance_targets()
    read: dict[str, int] = {}
    for target in targets:
        try:
            adapter = deps.adapters.get(target.provider_id)
            credentials = deps.cipher.decrypt(target.credentials_ciphertext)
            balance = await adapter.balance(credentials, target.base_url)
        except Exception as exc:  # one account's trouble never stops the others' refresh
            log.warning("balance not read", account_id=target.id, error=type(exc).__name__)
            continue
        if balance is None:
            continue
        uow = deps.uow()
        async with uow:
            active = await uow.accounts.record_balance(target.id, balance)
            await uow.commit()
        read[target.id] = balance
        if active:
            deps.wake.set()
    return read


async def run_balance_refresher(deps: Deps, stop: asyncio.Event) -> None:
    """Refresh balances every `balance_refresh_s`, or at once when `deps.balance_check` is set
    (a provider said an account's credits are spent)."""
    interval = deps.settings.balance_refresh_s
    wake = deps.balance_check
    if interval <= 0:
        await stop.wait()
        return
    while not stop.is_set():
        try:
            await refresh_balances(deps)
        except Exception as exc:
            log.warning("balance refresh failed", error=repr(exc))
        wake.clear()
        with contextlib.suppress(TimeoutError):
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
            try:
                await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
