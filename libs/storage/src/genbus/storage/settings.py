"""Where the object store is and how to reach it: any S3 endpoint (AWS, MinIO, R2, SeaweedFS)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class StorageSettings(BaseSettings):
    """`GENBUS_S3_*` settings shared by every service that reads or writes stored objects.

    `endpoint_url` empty means the provider's default (AWS); set it for any other S3 API.
    `path_style` addresses buckets as `<endpoint>/<bucket>/<key>` (MinIO, SeaweedFS, most
    self-hosted servers); off means virtual-hosted `<bucket>.<endpoint>/<key>`.
    """

    model_config = SettingsConfigDict(env_prefix="GENBUS_S3_", extra="ignore")

    endpoint_url: str = ""
    region: str = "us-east-1"
    bucket: str = "genbus"
    access_key_id: SecretStr = SecretStr("")
    secret_access_key: SecretStr = SecretStr("")
    path_style: bool = True
    #: Objects up to this size go in one PUT; larger ones in multipart parts of this size
    #: (S3 wants >= 5 MiB for every part but the last).
    part_size_bytes: int = Field(default=8 * MIB, ge=5 * MIB)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    #: Attempts per S3 call by the client itself (botocore's standard retry mode).
    max_attempts: int = Field(default=3, ge=1, le=10)
    #: Lifetime of presigned GET URLs handed to clients.
    presign_ttl_s: int = Field(default=300, ge=1, le=7 * 24 * 3600)

    def as_env(self) -> dict[str, str]:
        """These settings as the environment variables that produce them (for child processes)."""
        return {
            "GENBUS_S3_ENDPOINT_URL": self.endpoint_url,
            "GENBUS_S3_REGION": self.region,
            "GENBUS_S3_BUCKET": self.bucket,
            "GENBUS_S3_ACCESS_KEY_ID": self.access_key_id.get_secret_value(),
            "GENBUS_S3_SECRET_ACCESS_KEY": self.secret_access_key.get_secret_value(),
            "GENBUS_S3_PATH_STYLE": "true" if self.path_style else "false",
        }
