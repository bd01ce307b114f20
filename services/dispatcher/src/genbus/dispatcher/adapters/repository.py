"""The dispatch queue's SQL (`uow.jobs`): queueing, claiming with a fenced lease, recording.

An account's busy slots are never stored: they are the count of its jobs in a slot-holding
state, changed in the same transaction as the job. Reservations lock the account row, so
concurrent replicas can never reserve more than `max_concurrent` slots of one account.

A claim is fenced: it carries a `lease_token`, and every write on a claimed job checks it. A
holder whose lease was recovered by someone else (it stalled, or it was presumed dead) gets
`LeaseLost` from its next write and records nothing.

The repository is one object made of parts with one concern each: `JobLifecycle` (intake,
cancel, finish), `JobClaims` (claims, leases, tries), `JobSweeps` (reconciler, purge, gauges)
and `JobWaits` (why a job waits, as told the api).
"""

from __future__ import annotations

from genbus.dispatcher.adapters.job_claims import JobClaims
from genbus.dispatcher.adapters.job_lifecycle import JobLifecycle
from genbus.dispatcher.adapters.job_rows import Contended, JobSnapshot, LeaseLost, QueueDepth
from genbus.dispatcher.adapters.job_sweeps import JobSweeps
from genbus.dispatcher.adapters.job_waits import JobWaits, NotedWait

__all__ = ["Contended", "JobRepository", "JobSnapshot", "LeaseLost", "NotedWait", "QueueDepth"]


class JobRepository(JobLifecycle, JobClaims, JobSweeps, JobWaits):
    """The dispatch queue, in one transaction (`uow.jobs`)."""
