"""How the subscriber reaches NATS: URL(s), and optional user/password and TLS CA, from
arguments or the environment, so it runs against a local NATS and a secured cluster alike."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from genbus.runtime.nats_client import NatsAccess, nats_servers
from genbus.runtime.pull import GenbusBroker


@dataclass(frozen=True)
class NatsOptions:
    url: str
    user: str | None = None
    password: str | None = None
    #: A CA bundle to verify the server's certificate by (TLS); None: the URL decides.
    tls_ca: Path | None = None

    def access(self) -> NatsAccess:
        """Servers, user (else the URL's) and TLS trust, as genbus's own services connect."""
        return NatsAccess(
            servers=tuple(nats_servers(self.url)),
            user=self.user,
            password=self.password,
            tls_ca=str(self.tls_ca) if self.tls_ca is not None else None,
        )


def make_broker(options: NatsOptions, name: str) -> GenbusBroker:
    """A broker that reconnects forever: a NATS restart costs latency, never an event. Its
    consumers (`genbus.runtime.consumer.register_consumer`) pull with nats-py directly."""
    access = options.access()
    return GenbusBroker(
        list(access.servers),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        graceful_timeout=10.0,
        logger=logging.getLogger("completion_subscriber.faststream"),
        log_level=logging.DEBUG,
        **access.broker_options(),
    )
