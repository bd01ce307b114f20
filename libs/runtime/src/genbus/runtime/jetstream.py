"""Explicit provisioning of streams, durable consumers and KV buckets from the contracts.

Streams and buckets are made only by the privileged provisioning step (`genbus.runtime.provision`,
as the `provisioner` NATS user); a service brings only its own durables to their config.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from genbus.contracts import (
    ACCOUNT_DIRECTORY,
    CONSUMERS,
    DEAD_LETTER_STREAM,
    GENERATIONS_STREAM,
    ConsumerSpec,
    KvBinding,
    StreamSpec,
)


def stream_config(spec: StreamSpec, replicas: int | None = None) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=spec.max_age_s,
        max_bytes=spec.max_bytes,
        max_msgs=spec.max_msgs,
        discard=DiscardPolicy(spec.discard),
        duplicate_window=spec.duplicate_window_s,
        num_replicas=replicas or spec.replicas,
    )


def consumer_config(spec: ConsumerSpec) -> ConsumerConfig:
    return ConsumerConfig(
        name=spec.durable,
        durable_name=spec.durable,
        filter_subject=spec.filter_subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait_s,
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
    )


async def provision_stream(
    js: JetStreamContext, spec: StreamSpec, replicas: int | None = None
) -> None:
    """Create the stream, or bring an existing one to `spec`."""
    config = stream_config(spec, replicas)
    try:
        await js.update_stream(config)
    except NotFoundError:
        await js.add_stream(config)


async def provision_consumer(js: JetStreamContext, stream: StreamSpec, spec: ConsumerSpec) -> None:
    """Create the durable consumer, or update it in place when its config changed."""
    await js.add_consumer(stream.name, consumer_config(spec))


async def provision(
    js: JetStreamContext,
    consumers: tuple[ConsumerSpec, ...],
    replicas: int | None = None,
    streams: tuple[StreamSpec, StreamSpec] = (GENERATIONS_STREAM, DEAD_LETTER_STREAM),
) -> None:
    """Everything one service needs: the event and dead-letter streams and its own consumers.

    `streams` are the event and the dead-letter stream, as sized by the service's settings
    (`RuntimeSettings.streams()`); an existing stream is updated to their bounds.
    """
    events, dead_letters = streams
    await provision_stream(js, events, replicas)
    await provision_stream(js, dead_letters, replicas)
    for spec in consumers:
        await provision_consumer(js, events, spec)


async def provision_kv(
    js: JetStreamContext, binding: KvBinding[BaseModel], replicas: int = 1
) -> KeyValue:
    """The key-value bucket of `binding`, created when missing."""
    try:
        return await js.key_value(binding.bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=binding.bucket, history=binding.history, replicas=replicas)
        )


async def provision_all(
    js: JetStreamContext,
    replicas: int,
    streams: tuple[StreamSpec, StreamSpec] = (GENERATIONS_STREAM, DEAD_LETTER_STREAM),
) -> None:
    """What a deployment needs before any service starts: both streams, every durable consumer
    of the topology and the account directory bucket, each with `replicas` replicas."""
    await provision(js, CONSUMERS, replicas, streams)
    await provision_kv(js, ACCOUNT_DIRECTORY, replicas)  # type: ignore[arg-type]
