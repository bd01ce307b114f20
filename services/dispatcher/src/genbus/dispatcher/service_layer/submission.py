"""Submitting one claimed job to its provider, billed once whatever the provider does.

The behaviour of each error class is `genbus.providers.errors.BEHAVIOURS`; what the dispatcher
does for each is `_act_on_refusal` here, described in `reaction_of` (rendered into README's
table by `genbus-dispatcher error-table`, and checked against it by a test).

A job-creating call whose outcome is unknown (no answer after sending, a holder killed or
fenced out mid-call) is never repeated blindly: `resolve_in_doubt` asks the provider where the
adapter can (lookup by reference, or a replay under the same idempotency key), and otherwise
the generation ends `submission_outcome_unknown`. For a provider without idempotency the start
of each such call is recorded first, so a later holder knows the job may exist.

Every transient failure (a RETRY-behaviour refusal, or an in-doubt call) is recorded on the
account's circuit breaker (`record_breaker_failure`); an accepted submission closes it. When the
breaker is open after a definite refusal, the job is requeued without spending an attempt
(another account, or this one later) instead of being retried on this account. An in-doubt
submission is never requeued: it stays on its account until resolved (billed once).
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, replace

import structlog

from genbus.contracts import (
    COMPLETED,
    SUBMISSION_OUTCOME_UNKNOWN,
    SUBMITTED,
    UNSUPPORTED_PROVIDER,
    CompletionStatus,
    ErrorInfo,
    GenerationCompleted,
    GenerationRequested,
    GenerationSubmitted,
    provider_idempotency_key,
)
from genbus.dispatcher.adapters.accounts_store import BreakerUpdate
from genbus.dispatcher.adapters.repository import LeaseLost
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.domain.backoff import backoff_delay
from genbus.dispatcher.domain.model import (
    AccountStatus,
    BreakerState,
    ClaimedJob,
    slot_hold_s,
)
from genbus.dispatcher.service_layer.deps import Deps
from genbus.dispatcher.service_layer.observability import trace_context_of
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork
from genbus.providers import (
    Behaviour,
    CredentialDecryptError,
    ProviderAdapter,
    ProviderError,
    ProviderJobRef,
    ProviderUnavailable,
    QuotaExhausted,
    SubmitGuarantees,
    SubmitOutcomeUnknown,
    SubmitRequest,
    SubmitResult,
    UnknownProvider,
    behaviour_of,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS, observe_since, provider_call
from genbus.runtime.tracing import annotate_span, continue_trace

log = get_logger(__name__)

#: Lookups of an in-doubt job before giving up on asking the provider.
_LOOKUP_TRIES = 3


@dataclass
class HeldClaim:
    """A claim in the hands of this replica: what the lease keeper and the submission share."""

    claim: ClaimedJob
    #: Monotonic time until which the lease is known to be held (last renewal + lease).
    valid_until: float
    #: A job-creating provider call may have started (the job may exist at the provider).
    call_started: bool = False
    #: The holder wrote its last word about the job: nothing is left to fence or renew.
    settled: bool = False
    #: A failure was recorded on the account's breaker during this submission: its success
    #: must close the breaker (see `ClaimedJob.breaker_dirty`).
    breaker_dirty: bool = False


class _Resolution(enum.Enum):
    SAFE_TO_SUBMIT = "safe_to_submit"
    UNKNOWN = "unknown"


async def submit_claimed(deps: Deps, held: HeldClaim) -> None:
    """Submit `held.claim` (retrying transient errors on the same account with the same key).

    It continues the trace the request was queued with. A holder that lost its lease stops
    without recording anything: the new holder resolves the job.
    """
    claim = held.claim
    with (
        structlog.contextvars.bound_contextvars(generation_id=str(claim.generation_id)),
        continue_trace(
            "dispatch submit",
            trace_context_of(claim.request),
            attributes={
                "genbus.service": "dispatcher",
                "genbus.generation_id": str(claim.generation_id),
                "genbus.account_id": claim.account_id,
                "genbus.attempt": claim.attempt,
            },
        ),
    ):
        try:
            await _submit_claimed(deps, held)
        except LeaseLost:
            METRICS.leases_lost.labels(claim.provider_id, "recovered").inc()
            log.warning("claim recovered by another holder; recording nothing")
        finally:
            held.settled = True


async def _submit_claimed(deps: Deps, held: HeldClaim) -> None:
    claim = held.claim
    request = GenerationRequested.model_validate(claim.request)
    try:
        adapter = deps.adapters.get(claim.provider_id)
        credentials = deps.cipher.decrypt(claim.credentials_ciphertext)
    except UnknownProvider:
        await _fail(deps, claim, request, UNSUPPORTED_PROVIDER)
        return
    except CredentialDecryptError:
        await _disable_account(deps, claim, "credentials cannot be decrypted with the current keys")
        return
    submit = SubmitRequest(
        generation_id=claim.generation_id,
        operation_type=claim.operation_type,
        params=dict(request.params),
        inputs=list(request.inputs),
        idempotency_key=provider_idempotency_key(claim.generation_id, claim.attempt),
        credentials=credentials,
        base_url=claim.base_url,
    )
    result = await _obtain_job(deps, held, request, adapter, submit)
    if result is None:
        return
    # No provider call is left: the lease keeper must not cancel the recording of the job.
    held.settled = True
    cancel_requested = await _record_submitted(deps, held, request, result)
    observe_since(METRICS.requested_to_submitted, request.occurred_at, claim.provider_id)
    annotate_span(provider_job_id=result.provider_job_id)
    log.info(
        "submitted",
        account_id=claim.account_id,
        provider_job_id=result.provider_job_id,
        replayed=result.replayed,
    )
    if cancel_requested:
        # The user cancelled while we were submitting: cancel at the provider; the poller
        # follows the job and reports its final state.
        await cancel_at_provider(
            adapter,
            ProviderJobRef(
                provider_job_id=result.provider_job_id,
                credentials=credentials,
                base_url=claim.base_url,
            ),
        )


async def _record_submitted(
    deps: Deps, held: HeldClaim, request: GenerationRequested, result: SubmitResult
) -> bool:
    """Record the provider's job (and stage SUBMITTED); whether a cancel was requested.

    The provider has the job now: a database blip must not turn it into an in-doubt claim, so
    the write is retried for as long as the lease is surely still ours.
    """
    claim = held.claim
    tries = 0
    while True:
        try:
            uow = deps.uow()
            async with uow:
                cancel_requested = await uow.jobs.mark_submitted(claim, result.provider_job_id)
                if (claim.breaker_dirty or held.breaker_dirty) and (
                    await uow.accounts.record_breaker_success(claim.account_id)
                ):
                    log.info("account circuit breaker closed", account_id=claim.account_id)
                await uow.stage(
                    SUBMITTED,
                    GenerationSubmitted.following(
                        request,
                        account_id=claim.account_id,
                        provider_job_id=result.provider_job_id,
                        attempt=claim.attempt,
                    ),
                )
                await uow.commit()
            return cancel_requested
        except LeaseLost:
            raise
        except Exception as exc:
            tries += 1
            delay = backoff_delay(tries, 0.1, 2.0)
            # The lease keeper stops renewing a settled claim: stop well before it expires.
            safe_until = held.valid_until - deps.settings.lease_s / 4
            if time.monotonic() + delay >= safe_until:
                raise
            log.warning("recording the submitted job failed; retrying", error=repr(exc))
            await asyncio.sleep(delay)


async def _obtain_job(
    deps: Deps,
    held: HeldClaim,
    request: GenerationRequested,
    adapter: ProviderAdapter,
    submit: SubmitRequest,
) -> SubmitResult | None:
    """The provider's job for this claim, or None when the claim ended otherwise (recorded)."""
    settings = deps.settings
    loop = asyncio.get_running_loop()
    budget_end = loop.time() + settings.submit_budget_s
    guarantees = adapter.submit_guarantees
    claim = held.claim
    in_doubt = claim.in_doubt
    while True:
        if in_doubt:
            resolved = await resolve_in_doubt(adapter, submit, budget_end)
            if isinstance(resolved, SubmitResult):
                return resolved
            if resolved is _Resolution.UNKNOWN:
                await _fail(deps, claim, request, SUBMISSION_OUTCOME_UNKNOWN)
                return None
            in_doubt = False
            if claim.submit_tries:
                # The provider lost our last answer: give it a moment before asking again.
                await _back_off(settings, claim.submit_tries, budget_end)
        remaining = budget_end - loop.time()
        if claim.submit_tries >= settings.max_submit_tries or remaining <= 0:
            await _fail(
                deps,
                claim,
                request,
                ErrorInfo(
                    code=ProviderUnavailable.code,
                    message=f"no answer from the provider after {claim.submit_tries} tries",
                    retryable=True,
                ),
            )
            return None
        claim = replace(claim, submit_tries=claim.submit_tries + 1)
        if not guarantees.idempotent:
            uow = deps.uow()
            async with uow:
                await uow.jobs.record_submit_started(claim, settings.lease_s)
                await uow.commit()
        held.call_started = True
        try:
            async with asyncio.timeout(remaining) as budget:
                with provider_call(claim.provider_id, "submit"):
                    return await adapter.submit(submit)
        except SubmitOutcomeUnknown as exc:
            log.warning("submission outcome unknown", error=exc.message)
            await _breaker_failure_in_doubt(deps, held)
            in_doubt = True
            continue
        except TimeoutError as exc:
            if budget.expired():
                log.warning("submission budget spent during a provider call")
            else:
                log.warning("provider call timed out outside the adapter", error=repr(exc))
            await _breaker_failure_in_doubt(deps, held)
            in_doubt = True
            continue
        except Exception as exc:
            behaviour = behaviour_of(exc)
            if behaviour is Behaviour.RETRY and not isinstance(exc, ProviderError):
                # A raw network error escaped the adapter: the request may have been sent.
                log.warning("provider call failed outside the adapter", error=repr(exc))
                await _breaker_failure_in_doubt(deps, held)
                in_doubt = True
                continue
            error = _error_info(exc)
            log.info("submission refused", code=error.code, behaviour=behaviour.value)
            if behaviour is not Behaviour.RETRY:
                await _act_on_refusal(deps, claim, request, behaviour, exc, error)
                return None
            # The provider answered: nothing was created. Same account, same idempotency key;
            # unless the account's breaker is open now: then another account, or this one
            # later, takes the job (no attempt spent, so the same key is used there).
            uow = deps.uow()
            async with uow:
                breaker = await _record_breaker_failure(uow, settings, claim)
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
                else:
                    await uow.jobs.record_refusal(claim, settings.lease_s)
                await uow.commit()
            held.breaker_dirty = True
            held.call_started = False
            _after_breaker_failure(claim, breaker)
            if open_now:
                log.info("account circuit breaker open; job requeued", account_id=claim.account_id)
                deps.wake.set()
                return None
            await _back_off(settings, claim.submit_tries, budget_end)


async def _record_breaker_failure(
    uow: AbstractUnitOfWork, settings: DispatcherSettings, claim: ClaimedJob
) -> BreakerUpdate | None:
    return await uow.accounts.record_breaker_failure(
        claim.account_id,
        threshold=settings.breaker_failures,
        open_s=settings.breaker_open_s,
        max_s=settings.breaker_open_max_s,
    )


def _after_breaker_failure(claim: ClaimedJob, breaker: BreakerUpdate | None) -> None:
    if breaker is not None and breaker.tripped:
        METRICS.account_breaker_trips.labels(claim.provider_id).inc()
        log.warning(
            "account circuit breaker opened",
            account_id=claim.account_id,
            open_until=breaker.open_until.isoformat() if breaker.open_until else None,
            opened_count=breaker.opened_count,
        )


async def _breaker_failure_in_doubt(deps: Deps, held: HeldClaim) -> None:
    """Count an in-doubt call against the account's breaker. The job stays on its account
    whatever the breaker says (never resubmitted elsewhere); a failed write is only logged."""
    held.breaker_dirty = True
    try:
        uow = deps.uow()
        async with uow:
            breaker = await _record_breaker_failure(uow, deps.settings, held.claim)
            await uow.commit()
    except Exception as exc:
        log.warning("could not record a failure on the account's breaker", error=repr(exc))
        return
    _after_breaker_failure(held.claim, breaker)


async def _back_off(settings: DispatcherSettings, tries: int, budget_end: float) -> None:
    delay = backoff_delay(tries, settings.submit_backoff_base_s, settings.submit_backoff_max_s)
    remaining = budget_end - asyncio.get_running_loop().time()
    await asyncio.sleep(max(0.0, min(delay, remaining)))


async def resolve_in_doubt(
    adapter: ProviderAdapter, submit: SubmitRequest, budget_end: float
) -> SubmitResult | _Resolution:
    """What became of a job-creating call whose answer never came, asked of the provider.

    Found by reference: that job. Not found: nothing was created, submitting is safe. Neither
    findable nor idempotent: unknown. An idempotent provider may always be asked again with
    the same key: it returns the original job instead of creating a second one.
    """
    guarantees = adapter.submit_guarantees
    provider = adapter.provider_id
    loop = asyncio.get_running_loop()
    if guarantees.findable_by_reference:
        for attempt in range(1, _LOOKUP_TRIES + 1):
            try:
                async with asyncio.timeout(max(0.0, budget_end - loop.time())):
                    with provider_call(provider, "lookup"):
                        found = await adapter.find_by_reference(submit)
            except Exception as exc:
                log.warning("lookup of an in-doubt submission failed", error=repr(exc))
                if attempt < _LOOKUP_TRIES and loop.time() < budget_end:
                    await asyncio.sleep(min(0.5 * attempt, max(0.0, budget_end - loop.time())))
                continue
            if found is not None:
                METRICS.submissions_in_doubt.labels(provider, "found").inc()
                return found
            METRICS.submissions_in_doubt.labels(provider, "not_found").inc()
            return _Resolution.SAFE_TO_SUBMIT
    if guarantees.idempotent:
        METRICS.submissions_in_doubt.labels(provider, "replayed").inc()
        return _Resolution.SAFE_TO_SUBMIT
    METRICS.submissions_in_doubt.labels(provider, "unknown").inc()
    return _Resolution.UNKNOWN


def in_doubt_policy(guarantees: SubmitGuarantees) -> str:
    """What `resolve_in_doubt` does for a provider with these guarantees (README's table)."""
    if guarantees.findable_by_reference:
        then = (
            "submitted again with the same idempotency key"
            if guarantees.idempotent
            else "submitted again"
        )
        return f"looked up by reference: found, it is recorded; not found, it is {then}"
    if guarantees.idempotent:
        return "submitted again with the same idempotency key: the provider returns the original"
    return (
        "never submitted again: the generation fails `submission_outcome_unknown` "
        '(retryable), counted in `genbus_submissions_in_doubt_total{resolution="unknown"}`'
    )


async def _act_on_refusal(
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
        await _fail(deps, claim, request, error)
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
        await uow.commit()
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
        return f"mark the account `exhausted` (credits 0); {no_attempt}: another account takes it"
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


async def _disable_account(deps: Deps, claim: ClaimedJob, reason: str) -> None:
    uow = deps.uow()
    async with uow:
        await uow.accounts.set_status(claim.account_id, AccountStatus.DISABLED, reason)
        await uow.jobs.requeue(claim, 0.0, {"code": "account_disabled", "message": reason})
        await uow.commit()
    deps.wake.set()


async def _fail(
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


async def cancel_at_provider(adapter: ProviderAdapter, job: ProviderJobRef) -> None:
    """Best effort: a failed cancel leaves the job running, and the poller still follows it."""
    try:
        with provider_call(adapter.provider_id, "cancel"):
            await adapter.cancel(job)
    except Exception as exc:
        log.warning(
            "cancel at provider failed", provider_job_id=job.provider_job_id, error=repr(exc)
        )


def _error_info(exc: BaseException) -> ErrorInfo:
    if isinstance(exc, ProviderError):
        return exc.to_error_info()
    return ErrorInfo(code=ProviderUnavailable.code, message=type(exc).__name__, retryable=True)
