"""Counting a transient submission failure against the account's circuit breaker."""

from __future__ import annotations

from genbus.dispatcher.adapters.accounts_store import BreakerUpdate
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.domain.model import (
    ClaimedJob,
)
from genbus.dispatcher.service_layer.held_claim import HeldClaim
from genbus.dispatcher.service_layer.metrics import DISPATCH_METRICS
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


async def record_breaker_failure(
    uow: AbstractUnitOfWork, settings: DispatcherSettings, claim: ClaimedJob
) -> BreakerUpdate | None:
    return await uow.accounts.record_breaker_failure(
        claim.account_id,
        threshold=settings.breaker_failures,
        open_s=settings.breaker_open_s,
        max_s=settings.breaker_open_max_s,
    )


def after_breaker_failure(claim: ClaimedJob, breaker: BreakerUpdate | None) -> None:
    if breaker is not None and breaker.tripped:
        DISPATCH_METRICS.account_breaker_trips.labels(claim.provider_id).inc()
        log.warning(
            "account circuit breaker opened",
            account_id=claim.account_id,
            open_until=breaker.open_until.isoformat() if breaker.open_until else None,
            opened_count=breaker.opened_count,
        )


async def breaker_failure_in_doubt(deps: Deps, held: HeldClaim) -> None:
    """Count an in-doubt call against the account's breaker. The job stays on its account
    whatever the breaker says (never resubmitted elsewhere); a failed write is only logged."""
    held.breaker_dirty = True
    try:
        uow = deps.uow()
        async with uow:
            breaker = await record_breaker_failure(uow, deps.settings, held.claim)
            await uow.commit()
    except Exception as exc:
        log.warning("could not record a failure on the account's breaker", error=repr(exc))
        return
    after_breaker_failure(held.claim, breaker)
