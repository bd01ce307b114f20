"""Cancelling a job at its provider, best effort."""

from __future__ import annotations

from genbus.providers import (
    ProviderAdapter,
    ProviderJobRef,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import provider_call

log = get_logger(__name__)


async def cancel_at_provider(adapter: ProviderAdapter, job: ProviderJobRef) -> None:
    """Best effort: a failed cancel leaves the job running, and the poller still follows it."""
    try:
        with provider_call(adapter.provider_id, "cancel"):
            await adapter.cancel(job)
    except Exception as exc:
        log.warning(
            "cancel at provider failed", provider_job_id=job.provider_job_id, error=repr(exc)
        )
