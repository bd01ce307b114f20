"""Everything the simulator remembers: jobs, idempotency keys, counters. Pure logic, no HTTP."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from genbus.provider_sim.config import SimConfig
from genbus.provider_sim.errors import ErrorCode, SimError
from genbus.provider_sim.jobs import DEFAULT_OUTPUT_DURATION_S, Job, JobStatus, output_bytes
from genbus.provider_sim.slots import UnfinishedJobs

Clock = Callable[[], float]

REJECT_MARKER = "[reject]"
FAIL_MARKER = "[fail]"
LOSE_RESPONSE_MARKER = "[lose-response]"
_MAX_LISTED_DUPLICATES = 100
# Integer ids (the Pixverse facade's) look like Pixverse's and never repeat, even after a reset.
_FIRST_NUMERIC_ID = 300_000_000_000_000


@dataclass(slots=True)
class KeyStats:
    submissions: int = 0
    max_concurrent_seen: int = 0
    concurrency_violations: int = 0
    credits_used: int = 0
    rejections: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Submission:
    """A submission's job and how its answer must go: `answer_delay_s` late, or lost."""

    job: Job
    replayed: bool
    answer_delay_s: float = 0.0
    lose_answer: bool = False


@dataclass(frozen=True, slots=True)
class _JobRequest:
    prompt: str
    client_reference: str | None
    output_duration_s: float


class SimState:
    """The simulated provider. Single-threaded: call it from one event loop only."""

    def __init__(self, config: SimConfig, clock: Clock = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._rng = random.Random(config.seed)
        self._numeric_ids = itertools.count(_FIRST_NUMERIC_ID)
        # A gauge of live requests, not a counter: a reset must not move it.
        self._submits_in_progress = 0
        self.reset()

    @property
    def config(self) -> SimConfig:
        return self._config

    def now(self) -> float:
        return self._clock()

    def update_config(self, patch: Mapping[str, Any]) -> SimConfig:
        """Apply a partial update; a new `seed` reseeds the random draws."""
        try:
            config = SimConfig.model_validate({**self._config.model_dump(), **patch})
        except ValidationError as exc:
            raise SimError(ErrorCode.INVALID_REQUEST, _describe(exc)) from exc
        self._config = config
        if "seed" in patch:
            self._rng.seed(config.seed)
        return config

    def reset(self) -> None:
        """Forget jobs and counters; the config stays and the seed (if any) starts over."""
        self._rng.seed(self._config.seed)
        self._jobs: dict[str, Job] = {}
        self._idempotency: dict[tuple[str, str], Job] = {}
        self._unfinished: dict[str, UnfinishedJobs] = {}
        self._keys: dict[str, KeyStats] = {}
        self._reference_counts: dict[str, int] = {}
        self._by_reference: dict[tuple[str, str], list[Job]] = {}  # oldest first
        self._duplicated: set[str] = set()
        self._submissions = 0
        self._replays = 0
        self._duplicate_references = 0
        self._violations = 0
        self._status_requests = 0
        self._lookups = 0
        self._delayed_responses = 0
        self._lost_responses = 0
        self._cancels = 0
        self._cancelled_jobs = 0
        self._rejections: Counter[str] = Counter()
        self._images: dict[int, tuple[str, str]] = {}  # image id → (api key, source)

    # -- provider operations -------------------------------------------------------------

    def submit(
        self,
        api_key: str,
        body: object,
        idempotency_key: str | None,
        *,
        numeric_id: bool = False,
    ) -> Submission:
        """Accept a job, replay an idempotent one, or raise the `SimError` a provider would.

        `numeric_id`: the job's id is a decimal integer (as Pixverse's are), not a hex uuid.
        """
        stats = self._key_stats(api_key)
        try:
            return self._submit(api_key, stats, body, idempotency_key, numeric_id)
        except SimError as exc:
            self.count_rejection(api_key, exc)
            raise

    def count_rejection(self, api_key: str, error: SimError) -> None:
        """Count a submission refused with `error` (also for refusals decided at the HTTP edge)."""
        self._key_stats(api_key).rejections[error.code.value] += 1
        self._rejections[error.code.value] += 1

    def get_job(self, api_key: str, job_id: str) -> Job:
        self._status_requests += 1
        self._roll_server_fault()
        return self._owned_job(api_key, job_id)

    def find_by_reference(self, api_key: str, reference: str) -> list[Job]:
        """`api_key`'s jobs whose client reference is `reference`, newest first."""
        self._lookups += 1
        self._roll_server_fault()
        return self._by_reference.get((api_key, reference), [])[::-1]

    @contextmanager
    def submitting(self) -> Iterator[None]:
        """Count a job-creating or upload request in `submits_in_progress` while inside."""
        self._submits_in_progress += 1
        try:
            yield
        finally:
            self._submits_in_progress -= 1

    def cancel(self, api_key: str, job_id: str) -> Job:
        self._roll_server_fault()
        job = self._owned_job(api_key, job_id)
        self._cancels += 1
        now = self.now()
        if job.is_unfinished(now):
            job.cancelled_at = now
            self._unfinished_of(api_key).cancel(job.id)
            self._cancelled_jobs += 1
        return job

    def upload_image(self, api_key: str, source: str) -> int:
        """Remember an image uploaded by `api_key` (`source`: its URL or file name); its id."""
        image_id = next(self._numeric_ids)
        self._images[image_id] = (api_key, source)
        return image_id

    def has_image(self, api_key: str, image_id: int) -> bool:
        """Whether `api_key` uploaded the image `image_id` (ids are private to a key)."""
        image = self._images.get(image_id)
        return image is not None and image[0] == api_key

    def output_file(self, job_id: str) -> bytes:
        """The bytes behind a succeeded job's output URL (no key needed, like a signed URL)."""
        job = self._jobs.get(job_id)
        if job is None or job.status(self.now()) is not JobStatus.SUCCEEDED:
            raise SimError(ErrorCode.NOT_FOUND, "no such file")
        return output_bytes(job.id)

    def stats(self) -> dict[str, Any]:
        now = self.now()
        keys: dict[str, Any] = {}
        for api_key in sorted({*self._config.keys, *self._keys}):
            stats = self._key_stats(api_key)
            unfinished = self._unfinished_of(api_key).count(now)
            stats.max_concurrent_seen = max(stats.max_concurrent_seen, unfinished)
            credits = self._config.credits_for(api_key)
            keys[api_key] = {
                "submissions": stats.submissions,
                "unfinished": unfinished,
                "max_concurrent_seen": stats.max_concurrent_seen,
                "concurrency_violations": stats.concurrency_violations,
                "credits_used": stats.credits_used,
                "credits_left": None if credits is None else max(0, credits - stats.credits_used),
                "rejections": dict(stats.rejections),
            }
        return {
            "submissions": self._submissions,
            "idempotent_replays": self._replays,
            "duplicate_references": self._duplicate_references,
            "duplicated_references": sorted(self._duplicated)[:_MAX_LISTED_DUPLICATES],
            "concurrency_violations": self._violations,
            "max_concurrent_seen": max(
                (k["max_concurrent_seen"] for k in keys.values()), default=0
            ),
            "unfinished": sum(k["unfinished"] for k in keys.values()),
            "status_requests": self._status_requests,
            "lookups": self._lookups,
            "submits_in_progress": self._submits_in_progress,
            "delayed_responses": self._delayed_responses,
            "lost_responses": self._lost_responses,
            "cancels": self._cancels,
            "cancelled_jobs": self._cancelled_jobs,
            "rejections": dict(self._rejections),
            "image_uploads": len(self._images),
            "keys": keys,
        }

    # -- internals -----------------------------------------------------------------------

    def _submit(
        self,
        api_key: str,
        stats: KeyStats,
        body: object,
        idempotency_key: str | None,
        numeric_id: bool,
    ) -> Submission:
        config = self._config
        self._roll_server_fault()
        request = _parse_job_request(body)

        fingerprint = None
        if idempotency_key:
            fingerprint = _fingerprint(body)
            previous = self._idempotency.get((api_key, idempotency_key))
            if previous is not None:
                if previous.fingerprint != fingerprint:
                    raise SimError(
                        ErrorCode.IDEMPOTENCY_CONFLICT,
                        "this Idempotency-Key was used with a different body",
                    )
                self._replays += 1
                return Submission(previous, replayed=True)

        if config.rate_limit_rate and self._rng.random() < config.rate_limit_rate:
            raise SimError(
                ErrorCode.RATE_LIMITED, "too many requests", retry_after_s=config.retry_after_s
            )

        now = self.now()
        unfinished = self._unfinished_of(api_key)
        cap = config.per_key_concurrency
        if cap is not None and config.enforce_concurrency and unfinished.count(now) >= cap:
            raise SimError(ErrorCode.CONCURRENCY_LIMIT, f"at most {cap} unfinished jobs per key")

        credits = config.credits_for(api_key)
        if credits is not None and stats.credits_used >= credits:
            raise SimError(ErrorCode.QUOTA_EXHAUSTED, "no credits left on this key")

        if REJECT_MARKER in request.prompt or (
            config.moderation_rate and self._rng.random() < config.moderation_rate
        ):
            raise SimError(ErrorCode.CONTENT_REJECTED, "the prompt was rejected by moderation")

        job_id = str(next(self._numeric_ids)) if numeric_id else uuid.uuid4().hex
        job = self._new_job(job_id, api_key, request, now, fingerprint)
        self._accept(job, stats, unfinished, cap, now)
        if idempotency_key:
            self._idempotency[(api_key, idempotency_key)] = job
        return self._answer_fate(job, request)

    def _answer_fate(self, job: Job, request: _JobRequest) -> Submission:
        """The new `job`'s submission, with its answer delayed or lost as configured."""
        config = self._config
        delay_s = config.accepted_response_delay_ms / 1000
        if delay_s:
            self._delayed_responses += 1
        lose = LOSE_RESPONSE_MARKER in request.prompt or bool(
            config.lost_response_rate and self._rng.random() < config.lost_response_rate
        )
        if lose:
            self._lost_responses += 1
        return Submission(job, replayed=False, answer_delay_s=delay_s, lose_answer=lose)

    def _new_job(
        self,
        job_id: str,
        api_key: str,
        request: _JobRequest,
        now: float,
        fingerprint: bytes | None,
    ) -> Job:
        config = self._config
        duration = config.duration_s
        if config.duration_jitter_s:
            duration += self._rng.uniform(0.0, config.duration_jitter_s)
        will_fail = FAIL_MARKER in request.prompt or bool(
            config.fail_rate and self._rng.random() < config.fail_rate
        )
        return Job(
            id=job_id,
            api_key=api_key,
            client_reference=request.client_reference,
            created_at=now,
            running_at=now + duration * config.queued_fraction,
            end_at=now + duration,
            will_fail=will_fail,
            output_duration_s=request.output_duration_s,
            fingerprint=fingerprint,
        )

    def _accept(
        self, job: Job, stats: KeyStats, unfinished: UnfinishedJobs, cap: int | None, now: float
    ) -> None:
        self._jobs[job.id] = job
        unfinished.add(job.id, job.end_at)
        running = unfinished.count(now)
        stats.max_concurrent_seen = max(stats.max_concurrent_seen, running)
        if cap is not None and running > cap:
            stats.concurrency_violations += 1
            self._violations += 1
        stats.submissions += 1
        stats.credits_used += job.credits
        self._submissions += 1
        reference = job.client_reference
        if reference is not None:
            self._by_reference.setdefault((job.api_key, reference), []).append(job)
            seen = self._reference_counts.get(reference, 0)
            self._reference_counts[reference] = seen + 1
            if seen:
                self._duplicate_references += 1
                self._duplicated.add(reference)

    def _owned_job(self, api_key: str, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.api_key != api_key:
            raise SimError(ErrorCode.NOT_FOUND, "no such job")
        return job

    def _roll_server_fault(self) -> None:
        rate = self._config.error_5xx_rate
        if rate and self._rng.random() < rate:
            if self._rng.random() < 0.5:
                raise SimError(ErrorCode.INTERNAL_ERROR, "simulated internal error")
            raise SimError(
                ErrorCode.UNAVAILABLE,
                "simulated outage",
                retry_after_s=self._config.retry_after_s,
            )

    def _key_stats(self, api_key: str) -> KeyStats:
        stats = self._keys.get(api_key)
        if stats is None:
            stats = self._keys[api_key] = KeyStats()
        return stats

    def _unfinished_of(self, api_key: str) -> UnfinishedJobs:
        jobs = self._unfinished.get(api_key)
        if jobs is None:
            jobs = self._unfinished[api_key] = UnfinishedJobs()
        return jobs


def _parse_job_request(body: object) -> _JobRequest:
    if not isinstance(body, dict):
        raise SimError(ErrorCode.INVALID_REQUEST, "the body must be a JSON object")
    operation = body.get("operation")
    if not isinstance(operation, str) or not operation:
        raise SimError(ErrorCode.INVALID_REQUEST, "`operation` must be a non-empty string")
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise SimError(ErrorCode.INVALID_REQUEST, "`prompt` must be a string")
    reference = body.get("client_reference")
    if reference is not None and not isinstance(reference, str):
        raise SimError(ErrorCode.INVALID_REQUEST, "`client_reference` must be a string")
    duration = body.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration <= 0:
        duration = DEFAULT_OUTPUT_DURATION_S
    return _JobRequest(prompt, reference, float(duration))


def _fingerprint(body: object) -> bytes:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=16).digest()


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors()
    )
