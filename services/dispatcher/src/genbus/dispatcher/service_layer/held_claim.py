"""A claim in this replica's hands: what the lease keeper and the submission share."""

from __future__ import annotations

from dataclasses import dataclass

from genbus.dispatcher.domain.model import ClaimedJob


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
