"""The aiobotocore S3 client built from `StorageSettings`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, cast

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from genbus.storage.settings import StorageSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


def s3_config(settings: StorageSettings) -> AioConfig:
    """Timeouts, retries and addressing for any S3 endpoint.

    Checksums are computed only when an operation requires them: several S3-compatible servers
    reject the newer default (trailing CRC checksums on every PUT).
    """
    return AioConfig(
        signature_version="s3v4",
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        s3={"addressing_style": "path" if settings.path_style else "virtual"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def s3_client(settings: StorageSettings) -> AbstractAsyncContextManager[S3Client]:
    """A client context: `async with s3_client(settings) as client: ...`."""
    access_key = settings.access_key_id.get_secret_value() or None
    secret_key = settings.secret_access_key.get_secret_value() or None
    client = get_session().create_client(
        "s3",
        endpoint_url=settings.endpoint_url or None,
        region_name=settings.region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=s3_config(settings),
    )
    return cast("AbstractAsyncContextManager[S3Client]", client)
