"""Resolving a job-creating call whose answer never came, by asking the provider.

Found by reference: that job. Not found: nothing was created. Neither findable nor
idempotent: unknown, and the generation ends `submission_outcome_unknown` (billed once).
"""

from __future__ import annotations

import asyncio
import enum

from genbus.dispatcher.service_layer.metrics import DISPATCH_METRICS
from genbus.providers import (
    ProviderAdapter,
    SubmitGuarantees,
    SubmitRequest,
    SubmitResult,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import provider_call

log = get_logger(__name__)


class Resolution(enum.Enum):
    """What asking the provider about an in-doubt call concluded (besides finding the job)."""

    SAFE_TO_SUBMIT = "safe_to_submit"
    UNKNOWN = "unknown"


#: Lookups of an in-doubt job before giving up on asking the provider.
_LOOKUP_TRIES = 3


async def resolve_in_doubt(
    adapter: ProviderAdapter, submit: SubmitRequest, budget_end: float
) -> SubmitResult | Resolution:
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
                DISPATCH_METRICS.submissions_in_doubt.labels(provider, "found").inc()
                return found
            DISPATCH_METRICS.submissions_in_doubt.labels(provider, "not_found").inc()
            return Resolution.SAFE_TO_SUBMIT
    if guarantees.idempotent:
        DISPATCH_METRICS.submissions_in_doubt.labels(provider, "replayed").inc()
        return Resolution.SAFE_TO_SUBMIT
    DISPATCH_METRICS.submissions_in_doubt.labels(provider, "unknown").inc()
    return Resolution.UNKNOWN


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
