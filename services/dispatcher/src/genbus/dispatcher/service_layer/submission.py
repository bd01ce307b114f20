"""Submitting one claimed job to its provider, billed once whatever the provider does.

The behaviour of each error class is `genbus.providers.errors.BEHAVIOURS`; what the dispatcher
does for each is `refusals.act_on_refusal`, described in `reaction_of` (rendered into README's
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
import time
from dataclasses import replace

import structlog

from genbus.contracts import (
    SUBMISSION_OUTCOME_UNKNOWN,
    UNSUPPORTED_PROVIDER,
    ErrorInfo,
    GenerationRequested,
    GenerationSubmitted,
    provider_idempotency_key,
)
from genbus.dispatcher.adapters.repository import LeaseLost
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.domain.backoff import backoff_delay
from genbus.dispatcher.domain.model import ClaimedJob
from genbus.dispatcher.service_layer.breaker_failures import (
    breaker_failure_in_doubt,
)
from genbus.dispatcher.service_layer.held_claim import HeldClaim
from genbus.dispatcher.service_layer.in_doubt import Resolution, resolve_in_doubt
from genbus.dispatcher.service_layer.metrics import DISPATCH_METRICS
from genbus.dispatcher.service_layer.observability import trace_context_of
from genbus.dispatcher.service_layer.provider_cancel import cancel_at_provider
from genbus.dispatcher.service_layer.refusals import (
    act_on_refusal,
    disable_account,
    error_info,
    fail_claim,
    requeue_if_breaker_open,
)
from genbus.providers import (
    Behaviour,
    CredentialDecryptError,
    ProviderAdapter,
    ProviderError,
    ProviderJobRef,
    ProviderUnavailable,
    SubmitGuarantees,
    SubmitOutcomeUnknown,
    SubmitRequest,
    SubmitResult,
    UnknownProvider,
    behaviour_of,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import observe_since, provider_call
from genbus.runtime.tracing import annotate_span, continue_trace

log = get_logger(__name__)


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
            DISPATCH_METRICS.leases_lost.labels(claim.provider_id, "recovered").inc()
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
        await fail_claim(deps, claim, request, UNSUPPORTED_PROVIDER)
        return
    except CredentialDecryptError:
        await disable_account(deps, claim, "credentials cannot be decrypted with the current keys")
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
    observe_since(DISPATCH_METRICS.requested_to_submitted, request.occurred_at, claim.provider_id)
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
    breaker_dirty = claim.breaker_dirty or held.breaker_dirty
    submitted = GenerationSubmitted.following(
        request,
        account_id=claim.account_id,
        provider_job_id=result.provider_job_id,
        attempt=claim.attempt,
        cost=result.cost,
    )
    tries = 0
    while True:
        try:
            # Usually one write (the job and its event in one statement): no transaction.
            uow = deps.uow() if breaker_dirty else deps.one_statement()
            async with uow:
                cancel_requested = await uow.mark_submitted(
                    claim, result.provider_job_id, submitted
                )
                if breaker_dirty and await uow.accounts.record_breaker_success(claim.account_id):
                    log.info("account circuit breaker closed", account_id=claim.account_id)
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
    claim = held.claim
    in_doubt = claim.in_doubt
    while True:
        if in_doubt:
            resolved = await resolve_in_doubt(adapter, submit, budget_end)
            if isinstance(resolved, SubmitResult):
                return resolved
            if resolved is Resolution.UNKNOWN:
                await fail_claim(deps, claim, request, SUBMISSION_OUTCOME_UNKNOWN)
                return None
            in_doubt = False
            if claim.submit_tries:
                # The provider lost our last answer: give it a moment before asking again.
                await _back_off(settings, claim.submit_tries, budget_end)
        remaining = budget_end - loop.time()
        if claim.submit_tries >= settings.max_submit_tries or remaining <= 0:
            await fail_claim(deps, claim, request, _no_answer_after(claim.submit_tries))
            return None
        claim = replace(claim, submit_tries=claim.submit_tries + 1)
        await _note_call_start(deps, held, claim, adapter.submit_guarantees)
        try:
            async with asyncio.timeout(remaining) as budget:
                with provider_call(claim.provider_id, "submit"):
                    return await adapter.submit(submit)
        except Exception as exc:
            if _in_doubt_after(exc, budget_spent=budget.expired()):
                await breaker_failure_in_doubt(deps, held)
                in_doubt = True
                continue
            behaviour = behaviour_of(exc)
            error = error_info(exc)
            log.info("submission refused", code=error.code, behaviour=behaviour.value)
            if behaviour is not Behaviour.RETRY:
                await act_on_refusal(deps, claim, request, behaviour, exc, error)
                return None
            if await requeue_if_breaker_open(deps, held, claim, error):
                return None
            await _back_off(settings, claim.submit_tries, budget_end)


async def _note_call_start(
    deps: Deps, held: HeldClaim, claim: ClaimedJob, guarantees: SubmitGuarantees
) -> None:
    """Before a job-creating call: for a provider without idempotency, record it durably (a
    later holder then knows the job may exist); in every case the lease keeper knows."""
    if not guarantees.idempotent:
        uow = deps.uow()
        async with uow:
            await uow.jobs.record_submit_started(claim, deps.settings.lease_s)
            await uow.commit()
    held.call_started = True


def _in_doubt_after(exc: BaseException, *, budget_spent: bool) -> bool:
    """Whether a failed job-creating call may have reached the provider (outcome unknown)."""
    if isinstance(exc, SubmitOutcomeUnknown):
        log.warning("submission outcome unknown", error=exc.message)
        return True
    if isinstance(exc, TimeoutError):
        if budget_spent:
            log.warning("submission budget spent during a provider call")
        else:
            log.warning("provider call timed out outside the adapter", error=repr(exc))
        return True
    if behaviour_of(exc) is Behaviour.RETRY and not isinstance(exc, ProviderError):
        # A raw network error escaped the adapter: the request may have been sent.
        log.warning("provider call failed outside the adapter", error=repr(exc))
        return True
    return False


def _no_answer_after(tries: int) -> ErrorInfo:
    return ErrorInfo(
        code=ProviderUnavailable.code,
        message=f"no answer from the provider after {tries} tries",
        retryable=True,
    )


async def _back_off(settings: DispatcherSettings, tries: int, budget_end: float) -> None:
    delay = backoff_delay(tries, settings.submit_backoff_base_s, settings.submit_backoff_max_s)
    remaining = budget_end - asyncio.get_running_loop().time()
    await asyncio.sleep(max(0.0, min(delay, remaining)))
