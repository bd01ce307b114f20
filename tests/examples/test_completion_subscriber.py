"""The example subscriber (`examples/completion_subscriber`) on a real NATS: killed with SIGKILL
mid-way and restarted, every completion's notice is recorded exactly once; duplicates are
skipped by `event_id`; poison messages end in the dead-letter stream with their reason."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from completion_subscriber.consumer import CONSUMER
from completion_subscriber.store import MAX_URL_CHARS

from genbus.contracts import COMPLETED, GENERATIONS_STREAM, GenerationCompleted
from genbus.runtime.deadletter import list_dead_letters
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import connect_nats
from tests.waiting import eventually

pytestmark = pytest.mark.integration

EVENTS = 200
REPUBLISHED = 20


def _completion(i: int, *, url: str | None = None) -> GenerationCompleted:
    failed = i % 10 == 0
    return GenerationCompleted.model_validate(
        {
            "event_id": uuid4(),
            "occurred_at": datetime.now(UTC),
            "generation_id": uuid4(),
            "user_id": f"user-{i % 3}",
            "provider_id": "sim",
            "operation_type": "text_to_video",
            "status": "failed" if failed else "completed",
            "error": {"code": "content_rejected"} if failed else None,
            "asset": None
            if failed
            else {"url": url or f"https://cdn.test/{i}.mp4", "media_type": "video/mp4"},
            "attempt": 1,
        }
    )


async def _publish(nats_url: str, events: list[GenerationCompleted]) -> None:
    nc = await connect_nats(nats_url)
    try:
        js = nc.jetstream()
        await provision(js, (), replicas=1)  # the streams, as the genbus services create them
        for event in events:
            await js.publish(
                COMPLETED.subject(event.provider_id),
                event.model_dump_json().encode(),
                headers={"Nats-Msg-Id": str(event.event_id)},
            )
        # Published again under other message ids (after JetStream's duplicate window, or by
        # a producer that lost its id): only the subscriber's own dedup keeps them single.
        for event in events[:REPUBLISHED]:
            await js.publish(
                COMPLETED.subject(event.provider_id),
                event.model_dump_json().encode(),
                headers={"Nats-Msg-Id": f"{event.event_id}:again"},
            )
        # Poison: not an event at all, and an event whose notice can never be stored.
        await js.publish(COMPLETED.subject("sim"), b"{not json", stream=GENERATIONS_STREAM.name)
        unstorable = _completion(1, url="https://cdn.test/" + "x" * MAX_URL_CHARS)
        await js.publish(COMPLETED.subject("sim"), unstorable.model_dump_json().encode())
    finally:
        await nc.close()


@pytest.fixture
def run_subscriber(
    tmp_path: Path, nats_url: str
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"subscriber-{len(started)}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "completion_subscriber",
            "--nats-url",
            nats_url,
            "--db",
            str(tmp_path / "notices.db"),
            "--work-s",
            "0.01",
        ]
        if ca := os.environ.get("GENBUS_NATS_TLS_CA"):  # the test server's CA (TLS is on)
            command += ["--nats-tls-ca", ca]
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _counts(db: Path) -> tuple[int, int]:
    if not db.exists():
        return (0, 0)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            (processed,) = conn.execute("SELECT count(*) FROM processed_events").fetchone()
            (notices,) = conn.execute("SELECT count(*) FROM notices").fetchone()
        except sqlite3.OperationalError:  # tables not created yet
            return (0, 0)
    return (processed, notices)


async def _settled(nats_url: str) -> tuple[int, int]:
    """(messages not yet delivered, delivered but not acked) of the example's consumer."""
    nc = await connect_nats(nats_url)
    try:
        info = await nc.jetstream().consumer_info(GENERATIONS_STREAM.name, CONSUMER.durable)
        return (info.num_pending or 0, info.num_ack_pending or 0)
    finally:
        await nc.close()


async def test_killed_and_restarted_every_effect_happens_exactly_once(
    nats_url: str, run_subscriber: Callable[[], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    start = run_subscriber
    db = tmp_path / "notices.db"
    events = [_completion(i) for i in range(EVENTS)]
    await _publish(nats_url, events)

    first = start()

    async def counts() -> tuple[int, int]:
        return _counts(db)

    await eventually(counts, lambda c: c[1] >= EVENTS // 4, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = _counts(db)
    assert at_kill[1] < EVENTS, f"killed too late to be mid-way: {at_kill}"

    second = start()
    await eventually(counts, lambda c: c[1] >= EVENTS, timeout=60)
    # Everything acked: nothing left to redeliver (and so to repeat) later.
    await eventually(lambda: _settled(nats_url), lambda s: s == (0, 0), timeout=60)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0

    with sqlite3.connect(db) as conn:
        per_event = dict(conn.execute("SELECT event_id, count(*) FROM notices GROUP BY event_id"))
        (processed,) = conn.execute("SELECT count(*) FROM processed_events").fetchone()
    assert per_event == {str(e.event_id): 1 for e in events}, "missing or repeated effects"
    assert processed == EVENTS

    nc = await connect_nats(nats_url)
    try:
        letters = [
            d for d in await list_dead_letters(nc.jetstream()) if d.consumer == CONSUMER.durable
        ]
    finally:
        await nc.close()
    reasons = sorted(d.reason for d in letters)
    assert len(reasons) == 2, reasons
    assert reasons[0].startswith("invalid GenerationCompleted"), reasons
    assert "notice refused by the database" in reasons[1], reasons
