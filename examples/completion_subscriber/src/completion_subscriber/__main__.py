"""`completion-subscriber` / `python -m completion_subscriber`: run until SIGTERM or SIGINT.

Options come from arguments or the environment (`NATS_URL`, `NATS_USER`, `NATS_PASSWORD`,
`NATS_TLS_CA`, `COMPLETION_SUBSCRIBER_DB`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from nats.js import JetStreamContext

from completion_subscriber.connection import NatsOptions, make_broker
from completion_subscriber.consumer import CONSUMER, NAME, NoticeHandler
from completion_subscriber.store import NoticeStore
from genbus.contracts import GENERATIONS_STREAM
from genbus.runtime.consumer import register_consumer
from genbus.runtime.jetstream import provision_consumer
from genbus.runtime.logging import configure_logging, get_logger
from genbus.runtime.service import run_service

log = get_logger(__name__)

#: How long to wait for the stream at start-up (the genbus services create it).
STREAM_WAIT_S = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__)
    parser.add_argument("--nats-url", default=env("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--nats-user", default=env("NATS_USER"))
    parser.add_argument("--nats-password", default=env("NATS_PASSWORD"))
    parser.add_argument("--nats-tls-ca", type=Path, default=env("NATS_TLS_CA"))
    parser.add_argument(
        "--db", type=Path, default=Path(env("COMPLETION_SUBSCRIBER_DB", "completion_notices.db"))
    )
    parser.add_argument("--work-s", type=float, default=0.0, help="simulated work per event")
    parser.add_argument("--log-format", default=env("GENBUS_LOG_FORMAT", "json"))
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    options = NatsOptions(args.nats_url, args.nats_user, args.nats_password, args.nats_tls_ca)
    broker = make_broker(options, NAME)
    store = NoticeStore(args.db)
    register_consumer(broker, CONSUMER, NoticeHandler(store, work_s=args.work_s))
    try:
        await broker.connect()
        await _provision(broker.connection.jetstream())
        await broker.start()
        log.info("following completions", consumer=CONSUMER.durable, db=str(args.db))
        await stop.wait()
    finally:
        await broker.stop()
        store.close()
        log.info("stopped")


async def _provision(js: JetStreamContext) -> None:
    """Create or update this example's durable consumer, once the stream exists."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_WAIT_S
    while True:
        try:
            await provision_consumer(js, GENERATIONS_STREAM, CONSUMER)
            return
        except Exception as exc:
            if loop.time() > deadline:
                raise
            log.warning("stream not ready, retrying", error=repr(exc))
            await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(NAME, args.log_format)
    run_service(lambda stop: serve(args, stop))


if __name__ == "__main__":
    main()
