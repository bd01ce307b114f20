"""genbus object storage: one bucket of any S3 endpoint through aiobotocore."""

from genbus.storage.objects import (
    ByteRange,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    RangeNotSatisfiable,
    StorageError,
    StoredObject,
)
from genbus.storage.settings import StorageSettings
from genbus.storage.store import ObjectStore

__all__ = [
    "ByteRange",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStream",
    "RangeNotSatisfiable",
    "StorageError",
    "StorageSettings",
    "StoredObject",
]
