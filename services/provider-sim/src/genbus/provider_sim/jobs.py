"""A simulated job: its lifecycle is computed from the clock, never moved by a background task."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MEDIA_TYPE = "video/mp4"
OUTPUT_WIDTH = 1280
OUTPUT_HEIGHT = 720
DEFAULT_OUTPUT_DURATION_S = 5.0
_FILE_SIZE = 512
#: Credits a created job uses (the sim charges by job, whatever it asks for).
CREDITS_PER_JOB = 1


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(slots=True)
class Job:
    id: str
    api_key: str
    client_reference: str | None
    created_at: float
    running_at: float
    end_at: float
    will_fail: bool
    output_duration_s: float
    fingerprint: bytes | None = None  # body digest, kept only for idempotent submissions
    cancelled_at: float | None = None
    #: What the job used of its key's credits (counted in `credits_used` when created).
    credits: int = CREDITS_PER_JOB

    def status(self, now: float) -> JobStatus:
        if self.cancelled_at is not None:
            return JobStatus.CANCELLED
        if now >= self.end_at:
            return JobStatus.FAILED if self.will_fail else JobStatus.SUCCEEDED
        if now >= self.running_at:
            return JobStatus.RUNNING
        return JobStatus.QUEUED

    def is_unfinished(self, now: float) -> bool:
        return self.status(now) not in TERMINAL

    def progress(self, now: float) -> float:
        at = now if self.cancelled_at is None else self.cancelled_at
        if at < self.running_at:
            return 0.0
        if at >= self.end_at:
            return 1.0
        return round((at - self.created_at) / (self.end_at - self.created_at), 3)


def render_job(job: Job, now: float, files_url: str) -> dict[str, Any]:
    """The `GET /v1/jobs/{id}` body; `files_url` is the absolute URL of `/v1/files/`."""
    status = job.status(now)
    output = None
    error = None
    if status is JobStatus.SUCCEEDED:
        output = {
            "url": f"{files_url}{job.id}",
            "media_type": MEDIA_TYPE,
            "width": OUTPUT_WIDTH,
            "height": OUTPUT_HEIGHT,
            "duration_s": job.output_duration_s,
        }
    elif status is JobStatus.FAILED:
        error = {"code": "generation_failed", "message": "the simulated generation failed"}
    return {
        "id": job.id,
        "status": status.value,
        "progress": job.progress(now),
        "output": output,
        "error": error,
        "credits": job.credits,
    }


def output_bytes(job_id: str) -> bytes:
    """Deterministic stand-in for the video: an `ftyp` box then bytes derived from the job id."""
    header = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    filler = bytearray()
    block = job_id.encode()
    while len(header) + len(filler) < _FILE_SIZE:
        block = hashlib.sha256(block).digest()
        filler += block
    return (header + bytes(filler))[:_FILE_SIZE]


def credits_left(stats: dict[str, Any], credits: int | None, api_key: str) -> int | None:
    """What `api_key` has left of `credits` (None: unlimited), by the sim's `stats()`."""
    if credits is None:
        return None
    used = int(stats["keys"].get(api_key, {}).get("credits_used", 0))
    return max(0, credits - used)
