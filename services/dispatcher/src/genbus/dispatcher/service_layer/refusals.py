"""The one reaction to each class of provider refusal (`genbus.providers.errors.BEHAVIOURS`).

`reaction_of` describes each reaction for README's table (`genbus-dispatcher error-table`,
checked against it by a test).
"""

from __future__ import annotations

from genbus.contracts import (
    COMPLETED,
    CompletionStatus,
    ErrorInfo,
    GenerationCompleted,
    GenerationRequested,
    WaitingReason,
)
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.domain.model import (
    AccountStatus,
    BreakerState,
    ClaimedJob,
    slot_hold_s,
)
from genbus.dispatcher.service_layer.breaker_failures import (
    after_breaker_failure,
    record_breaker_failure,
)
from genbus.dispatcher.service_layer.held_claim import HeldClaim
from genbus.dispatcher.service_layer.waits import tell_wait
from genbus.providers import (
    Behaviour,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    SubmitOutcomeUnknown,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


async def act_on_refusal(
    deps: Deps,
    claim: ClaimedJob,
    request: GenerationRequested,
    behaviour: Behaviour,
    exc: BaseException,
    error: ErrorInfo,
) -> None:
    """The one reaction to each error class (see genbus.providers.errors.BEHAVIOURS)."""
    settings = deps.settings
    retry_after = exc.retry_after_s if isinstance(exc, ProviderError) else None
    if behaviour is Behaviour.FAIL:
        await fail_claim(deps, claim, request, error)
        return
    uow = deps.uow()
    async with uow:
        if behaviour is Behaviour.BACK_OFF:
            cooldown = retry_after if retry_after is not None else settings.rate_limit_cooldown_s
            await uow.accounts.cool_down(claim.account_id, cooldown, error.code)
        elif behaviour is Behaviour.ROTATE and isinstance(exc, QuotaExhausted):
            await uow.accounts.mark_exhausted(claim.account_id, error.message or error.code)
        elif behaviour is Behaviour.ROTATE:
            cooldown = retry_after if retry_after is not None else settings.concurrency_cooldown_s
            await uow.accounts.cool_down(claim.account_id, cooldown, error.code)
        elif behaviour is Behaviour.DISABLE_ACCOUNT:
            await uow.accounts.set_status(
                claim.account_id, AccountStatus.DISABLED, error.message or error.code
            )
        # The provider refused before creating anything: requeue without spending an attempt.
        await uow.jobs.requeue(claim, 0.0, error.model_dump())
        await tell_wait(uow, claim.generation_id, WaitingReason.RETRYING, retry_in_s=0.0)
        await uow.commit()
    if behaviour is Behaviour.ROTATE and isinstance(exc, QuotaExhausted):
        deps.balance_check.set()
    deps.wake.set()


def reaction_of(error_class: type[BaseException], behaviour: Behaviour) -> str:
    """What `submit_claimed` does when the provider refuses a submission with `error_class`."""
    no_attempt = "requeue at once without spending an attempt"
    if issubclass(error_class, SubmitOutcomeUnknown):
        return (
            "in doubt: look the job up by reference where the provider can, replay with the "
            "same idempotency key where it is idempotent; otherwise fail the generation with "
            "`submission_outcome_unknown` (never a second paid job); counts against the "
            "account's circuit breaker, but the job never leaves its account"
        )
    if behaviour is Behaviour.BACK_OFF:
        return (
            "cool the account down for `Retry-After` (default `rate_limit_cooldown_s`); "
            f"{no_attempt}"
        )
    if behaviour is Behaviour.ROTATE and issubclass(error_class, QuotaExhausted):
        return (
            f"mark the account `exhausted` (credits 0) and read balances again; {no_attempt}: "
            "another account takes it"
        )
    if behaviour is Behaviour.ROTATE:
        return (
            "cool the account down for `Retry-After` (default `concurrency_cooldown_s`); "
            f"{no_attempt}"
        )
    if behaviour is Behaviour.DISABLE_ACCOUNT:
        return f"disable the account with the provider's message as reason; {no_attempt}"
    if behaviour is Behaviour.FAIL:
        return "fail the generation with this code at once; no retry"
    return (
        "retry on the same account and idempotency key, with exponential backoff and jitter; "
        "after `max_submit_tries` tries fail the generation with `provider_unavailable`; "
        "counts against the account's circuit breaker: once it is open, a job the provider "
        "refused (not one whose answer was lost) is requeued at once without spending an attempt"
    )


async def disable_account(deps: Deps, claim: ClaimedJob, reason: str) -> None:
    uow = deps.uow()
    async with uow:
        await uow.accounts.set_status(claim.account_id, AccountStatus.DISABLED, reason)
        await uow.jobs.requeue(claim, 0.0, {"code": "account_disabled", "message": reason})
        await tell_wait(uow, claim.generation_id, WaitingReason.RETRYING, retry_in_s=0.0)
        await uow.commit()
    deps.wake.set()


async def fail_claim(
    deps: Deps, claim: ClaimedJob, request: GenerationRequested, error: ErrorInfo
) -> None:
    # A job whose outcome is unknown may be running at the provider: keep its slot a while.
    hold = slot_hold_s(error.code, deps.settings.unfollowed_slot_hold_s)
    uow = deps.uow()
    async with uow:
        await uow.jobs.fail_claimed(claim, error.model_dump(), hold_slot_s=hold)
        await uow.stage(
            COMPLETED,
            GenerationCompleted.following(
                request,
                status=CompletionStatus.FAILED,
                attempt=claim.attempt,
                error=error,
                account_id=claim.account_id,
            ),
        )
        await uow.commit()
    log.info("generation failed by the dispatcher", code=error.code)
    deps.wake.set()


def error_info(exc: BaseException) -> ErrorInfo:
    if isinstance(exc, ProviderError):
        return exc.to_error_info()
    return ErrorInfo(code=ProviderUnavailable.code, message=type(exc).__name__, retryable=True)


async def requeue_if_breaker_open(
    deps: Deps, held: HeldClaim, claim: ClaimedJob, error: ErrorInfo
) -> bool:
    """A RETRY refusal: count it on the account's breaker; True when the job was requeued.

    The provider answered, so nothing was created. The holder retries on the same account with
    the same idempotency key, unless the breaker is open now: then another account, or this
    one later, takes the job (no attempt spent, so the same key is used there).
    """
    settings = deps.settings
    uow = deps.uow()
    async with uow:
        breaker = await record_breaker_failure(uow, settings, claim)
        open_now = breaker is not None and breaker.state is BreakerState.OPEN
        if open_now:
            await uow.jobs.requeue(
                claim,
                0.0,
                {
                    "code": "account_breaker_open",
                    "message": f"{error.code} on account {claim.account_id}",
                },
            )
            await tell_wait(uow, claim.generation_id, WaitingReason.RETRYING, retry_in_s=0.0)
        else:
            await uow.jobs.record_refusal(claim, settings.lease_s)
            # The holder backs off on this account (`submission._back_off`): at most this long.
            ceiling = min(
                settings.submit_backoff_max_s,
                settings.submit_backoff_base_s * 2.0 ** max(claim.submit_tries - 1, 0),
            )
            await tell_wait(uow, claim.generation_id, WaitingReason.RETRYING, retry_in_s=ceiling)
        await uow.commit()
    held.breaker_dirty = True
    held.call_started = False
    after_breaker_failure(claim, breaker)
    if open_now:
        log.info("account circuit breaker open; job requeued", account_id=claim.account_id)
        deps.wake.set()
    return open_now
