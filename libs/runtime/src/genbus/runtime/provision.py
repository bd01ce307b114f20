"""The privileged provisioning step: `python -m genbus.runtime.provision`.

Creates (or brings to the contracts) the event and dead-letter streams, every durable consumer
of the topology and the account directory KV bucket. It runs as the `provisioner` NATS user
(`GENBUS_NATS_USER`/`GENBUS_NATS_PASSWORD`, TLS from `GENBUS_NATS_TLS_CA`) before the services
start: `make run`, the test set-up and the Kubernetes `genbus-provision` Job. Sizes and replicas
come from the shared settings (`GENBUS_STREAM_REPLICAS`, `GENBUS_STREAM_MAX_BYTES`, ...).
"""

from __future__ import annotations

import asyncio
import threading

import nats

from genbus.contracts import StreamSpec
from genbus.runtime.jetstream import provision_all
from genbus.runtime.logging import configure_logging, get_logger
from genbus.runtime.nats_client import NatsAccess
from genbus.runtime.service import until_provisioned
from genbus.runtime.settings import RuntimeSettings

log = get_logger(__name__)


async def provision_deployment(
    access: NatsAccess,
    replicas: int = 1,
    streams: tuple[StreamSpec, StreamSpec] | None = None,
    timeout_s: float = 60.0,
) -> None:
    """Connect with `access` (the provisioner's) and provision everything; JetStream not ready
    yet (a cluster electing its leaders) is retried for up to `timeout_s`."""
    nc = await nats.connect(list(access.servers), connect_timeout=5, **access.connect_options())
    try:
        js = nc.jetstream()

        async def step() -> None:
            await provision_all(js, replicas, streams or RuntimeSettings().streams())

        await until_provisioned(step, timeout_s)
    finally:
        await nc.close()
    log.info("jetstream provisioned", replicas=replicas)


def provision_blocking(access: NatsAccess, replicas: int = 1, timeout_s: float = 60.0) -> None:
    """`provision_deployment` from synchronous code (its own thread and event loop)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(provision_deployment(access, replicas, timeout_s=timeout_s))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="genbus-provision")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def main() -> None:
    settings = RuntimeSettings()
    configure_logging("provisioner", settings.log_format, settings.log_level)
    access = NatsAccess.from_settings(settings)
    asyncio.run(provision_deployment(access, settings.stream_replicas, settings.streams()))


if __name__ == "__main__":
    main()
