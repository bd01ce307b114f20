"""Settings of stored assets besides archiving: uploads for inputs (`GENBUS_API_UPLOAD_*`) and
the lifecycle of stored objects (`GENBUS_API_ASSET_*`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from genbus.storage.settings import MIB

#: What an upload may be, by the media type its bytes show (not the one it declares).
DEFAULT_UPLOAD_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "audio/mpeg",
    "audio/x-wav",
    "audio/ogg",
)


class UploadSettings(BaseSettings):
    """`POST /api/v1/uploads`: off unless an object store is configured (`GENBUS_S3_*`)."""

    model_config = SettingsConfigDict(env_prefix="GENBUS_API_UPLOAD_", extra="ignore")

    #: Take uploads (needs `GENBUS_S3_*`); off: `POST /api/v1/uploads` is `404 uploads_disabled`.
    enabled: bool = False
    #: Largest upload (the body is cut off past it: `413 upload_too_large`).
    max_bytes: int = Field(default=50 * MIB, ge=1)
    #: Media types accepted, as sniffed from the bytes. Comma-separated.
    media_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_UPLOAD_TYPES)
    )
    #: Per user: total bytes of the uploads kept at once (`409 upload_quota_exceeded`).
    quota_bytes: int = Field(default=1024 * MIB, ge=1)
    #: Per user: number of uploads kept at once (`409 upload_quota_exceeded`).
    quota_count: int = Field(default=500, ge=1)
    #: Bound on receiving and storing one upload.
    timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("media_types", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class AssetSettings(BaseSettings):
    """How long stored objects live, and how inputs from them reach providers."""

    model_config = SettingsConfigDict(env_prefix="GENBUS_API_ASSET_", extra="ignore")

    #: Terminal generations (with their stored outputs) and uploads older than this many days
    #: are deleted by the archiver, in batches; 0 keeps them until their owner deletes them.
    retention_days: float = Field(default=0.0, ge=0)
    #: Rows deleted per retention pass (one transaction each).
    retention_batch: int = Field(default=200, ge=1, le=10_000)
    #: An object under `generations/` or `uploads/` without a row is deleted once older than
    #: this (so an upload or a copy being written is never taken for an orphan).
    orphan_grace_h: float = Field(default=24.0, gt=0)
    #: How often the archiver lists the bucket for orphans.
    orphan_sweep_interval_s: float = Field(default=3600.0, gt=0)
    #: A stored input reaches the provider as a presigned GET valid until the generation's
    #: deadline plus this margin (capped at 7 days, the S3 limit): retries submit before the
    #: deadline, so a late submit still hands over a working URL.
    input_url_margin_s: int = Field(default=3600, ge=60, le=24 * 3600)
