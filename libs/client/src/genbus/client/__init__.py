"""genbus.client: the Python client of the genbus HTTP API.

    from genbus.client import GenbusClient

    with GenbusClient("http://localhost:8000", api_key="gbk_...") as genbus:
        request = {"operation_type": "text_to_video", "provider_id": "sim",
                   "params": {"prompt": "a cat"}}
        done = genbus.create(request, wait=30)
        print(done.status, done.asset)

`AsyncGenbusClient` has the same calls as coroutines. Models (`genbus.client.models`) are
generated from the API's committed OpenAPI document.
"""

from genbus.client.async_client import AsyncGenbusClient
from genbus.client.calls import GenerationDeleted, StreamEvent, new_idempotency_key
from genbus.client.errors import (
    ApiError,
    Conflict,
    GenbusError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    StreamError,
    Unauthorized,
    ValidationFailed,
    WebhookVerificationError,
)
from genbus.client.models import (
    GenerationCreate,
    GenerationPage,
    GenerationPublic,
    GenerationStatus,
)
from genbus.client.sync_client import GenbusClient
from genbus.client.webhooks import verify_webhook, webhook_id

__all__ = [
    "ApiError",
    "AsyncGenbusClient",
    "Conflict",
    "GenbusClient",
    "GenbusError",
    "GenerationCreate",
    "GenerationDeleted",
    "GenerationPage",
    "GenerationPublic",
    "GenerationStatus",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "StreamError",
    "StreamEvent",
    "Unauthorized",
    "ValidationFailed",
    "WebhookVerificationError",
    "new_idempotency_key",
    "verify_webhook",
    "webhook_id",
]
