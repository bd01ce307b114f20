"""How the subscriber reaches NATS: URL(s), and optional user/password and TLS CA, from
arguments or the environment, so it runs against a local NATS and a secured cluster alike."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from faststream.nats import NatsBroker

from genbus.runtime.service import nats_servers


@dataclass(frozen=True)
class NatsOptions:
    url: str
    user: str | None = None
    password: str | None = None
    #: A CA bundle to verify the server's certificate by (TLS); None: the URL decides.
    tls_ca: Path | None = None

    def tls(self) -> ssl.SSLContext | None:
        if self.tls_ca is None:
            return None
        return ssl.create_default_context(cafile=str(self.tls_ca))


def make_broker(options: NatsOptions, name: str) -> NatsBroker:
    """A broker that reconnects forever: a NATS restart costs latency, never an event."""
    extra: dict[str, object] = {}
    if options.user is not None:
        extra.update(user=options.user, password=options.password)
    tls = options.tls()
    if tls is not None:
        extra["tls"] = tls
    return NatsBroker(
        nats_servers(options.url),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        graceful_timeout=10.0,
        logger=logging.getLogger("completion_subscriber.faststream"),
        log_level=logging.DEBUG,
        **extra,  # type: ignore[arg-type]
    )
