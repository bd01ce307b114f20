"""Submitting one claimed job to its provider, and acting on the one behaviour of each error.

The behaviour of each error class is `genbus.providers.errors.BEHAVIOURS`; what the dispatcher
does for each is `_act_on_refusal` here, described in `reaction_of` (rendered into README's
table by `genbus-dispatcher error-table`, and checked against it by a test).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import structlog

from genbus.contracts import (
    COMPLETED,
    SUBMITTED,
    CompletionStatus,
    ErrorInfo,
    GenerationRequested,
    provider_idempotency_key,
)
from genbus.dispatcher.adapters import repository as repo
from genbus.dispatcher.domain.backoff import backoff_delay
from genbus.dispatcher.domain.model import AccountStatus, ClaimedJob, JobState
from genbus.dispatcher.service_layer import events
from genbus.dispatcher.service_layer.deps import Deps
from genbus.dispatcher.service_layer.observability import trace_context_of
from genbus.providers import (
    Behaviour,
    CredentialDecryptError,
    ProviderAdapter,
    ProviderError,
    ProviderJobRef,
    ProviderUnavailable,
    QuotaExhausted,
    SubmitRequest,
    UnknownProvider,
    behaviour_of,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS, observe_since, provider_call
from genbus.runtime.tracing import annotate_span, continue_trace

log = get_logger(__name__)


async def submit_claimed(deps: Deps, claim: ClaimedJob) -> None:
    """Submit `claim` (retrying transient errors on the same account with the same key).

    It continues the trace the request was queued with.
    """
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
        await _submit_claimed(deps, claim)


async def _submit_claimed(deps: Deps, claim: ClaimedJob) -> None:
    request = GenerationRequested.model_validate(claim.request)
    bound = log.bind(generation_id=str(claim.generation_id), account_id=claim.account_id)
    try:
        adapter = deps.adapters.get(claim.provider_id)
        credentials = deps.cipher.decrypt(claim.credentials_ciphertext)
    except UnknownProvider:
        await _fail(deps, claim, request, ErrorInfo(code="unsupported_provider"))
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
    while True:
        try:
            with provider_call(claim.provider_id, "submit"):
                result = await adapter.submit(submit)
        except Exception as exc:
            behaviour = behaviour_of(exc)
            error = _error_info(exc)
            bound.info("submission refused", code=error.code, behaviour=behaviour.value)
            if behaviour is Behaviour.RETRY:
                claim = replace(claim, submit_tries=claim.submit_tries + 1)
                if claim.submit_tries >= deps.settings.max_submit_tries:
                    await _fail(
                        deps,
                        claim,
                        request,
                        ErrorInfo(code=ProviderUnavailable.code, message=error.message),
                    )
                    return
                # Same account, same idempotency key: if the provider did create the job
                # before failing to answer, the retry returns that job instead of a second one.
                async with deps.uow() as uow:
                    await repo.extend_lease(uow.conn, claim, deps.settings.lease_s)
                await asyncio.sleep(
                    backoff_delay(
                        claim.submit_tries,
                        deps.settings.submit_backoff_base_s,
                        deps.settings.submit_backoff_max_s,
                    )
                )
                continue
            await _act_on_refusal(deps, claim, request, behaviour, exc, error)
            return
        break
    async with deps.uow() as uow:
        cancel_requested = await repo.mark_submitted(uow.conn, claim, result.provider_job_id)
        if cancel_requested is not None:
            await uow.stage(
                SUBMITTED,
                events.submitted(request, claim.account_id, result.provider_job_id, claim.attempt),
            )
    if cancel_requested is not None:
        observe_since(METRICS.requested_to_submitted, request.occurred_at, claim.provider_id)
    annotate_span(provider_job_id=result.provider_job_id)
    bound.info("submitted", provider_job_id=result.provider_job_id, replayed=result.replayed)
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
    async with deps.uow() as uow:
        if behaviour is Behaviour.BACK_OFF:
            cooldown = retry_after if retry_after is not None else settings.rate_limit_cooldown_s
            await repo.cool_down(uow.conn, claim.account_id, cooldown, error.code)
        elif behaviour is Behaviour.ROTATE and isinstance(exc, QuotaExhausted):
            await repo.mark_exhausted(uow.conn, claim.account_id, error.message or error.code)
        elif behaviour is Behaviour.ROTATE:
            cooldown = retry_after if retry_after is not None else settings.concurrency_cooldown_s
            await repo.cool_down(uow.conn, claim.account_id, cooldown, error.code)
        elif behaviour is Behaviour.DISABLE_ACCOUNT:
            await repo.set_account_status(
                uow.conn, claim.account_id, AccountStatus.DISABLED, error.message or error.code
            )
        # The provider refused before creating anything: requeue without spending an attempt.
        await repo.requeue(uow.conn, claim, 0.0, error.model_dump())
    deps.wake.set()


def reaction_of(error_class: type[BaseException], behaviour: Behaviour) -> str:
    """What `submit_claimed` does when the provider refuses a submission with `error_class`."""
    no_attempt = "requeue at once without spending an attempt"
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
        "after `max_submit_tries` tries fail the generation with `provider_unavailable`"
    )


async def _disable_account(deps: Deps, claim: ClaimedJob, reason: str) -> None:
    async with deps.uow() as uow:
        await repo.set_account_status(uow.conn, claim.account_id, AccountStatus.DISABLED, reason)
        await repo.requeue(uow.conn, claim, 0.0, {"code": "account_disabled", "message": reason})
    deps.wake.set()


async def _fail(
    deps: Deps, claim: ClaimedJob, request: GenerationRequested, error: ErrorInfo
) -> None:
    async with deps.uow() as uow:
        done = await repo.finish(
            uow.conn,
            claim.generation_id,
            JobState.FAILED,
            error.model_dump(),
            only_from=(JobState.CLAIMED,),
        )
        if done is not None:
            await uow.stage(
                COMPLETED,
                events.ended(
                    request,
                    CompletionStatus.FAILED,
                    attempt=claim.attempt,
                    error=error,
                    account_id=claim.account_id,
                ),
            )
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
