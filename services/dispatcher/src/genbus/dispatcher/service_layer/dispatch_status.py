"""What `GET /admin/status` and the console's overview show of the dispatch queue and accounts."""

from __future__ import annotations

from typing import Any

from genbus.dispatcher.domain.model import AccountStatus, BreakerState
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork


async def dispatch_status(uow: AbstractUnitOfWork) -> dict[str, Any]:
    """Queues per provider, in-flight jobs per account, and a summary of the accounts."""
    async with uow:
        queues = [queue.as_dict() for queue in await uow.jobs.queue_depth()]
        accounts = await uow.accounts.list_accounts()
    by_status = {status.value: 0 for status in AccountStatus}
    providers: dict[str, dict[str, int]] = {}
    for account in accounts:
        by_status[account.status.value] += 1
        summary = providers.setdefault(
            account.provider_id, {"accounts": 0, "usable": 0, "slots": 0, "busy": 0}
        )
        summary["accounts"] += 1
        summary["busy"] += account.busy
        if account.status is AccountStatus.ACTIVE and account.breaker is not BreakerState.OPEN:
            summary["usable"] += 1
            summary["slots"] += account.max_concurrent
    return {
        "queues": queues,
        "accounts": {"total": len(accounts), "by_status": by_status, "by_provider": providers},
        "in_flight": [
            {
                "account_id": a.id,
                "provider_id": a.provider_id,
                "status": a.status.value,
                "breaker": a.breaker.value,
                "breaker_open_until": a.breaker_open_until.isoformat()
                if a.breaker_open_until
                else None,
                "busy": a.busy,
                "claimed": a.claimed,
                "submitted": a.submitted,
                "max_concurrent": a.max_concurrent,
            }
            for a in accounts
        ],
    }
