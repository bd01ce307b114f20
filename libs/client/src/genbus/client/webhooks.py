"""Verifying the webhook requests genbus sends (Standard Webhooks: `webhook-id`,
`webhook-timestamp`, `webhook-signature`), with the `standardwebhooks` reference package.

    payload = verify_webhook(secret, request_body, request_headers)

`secret` is the endpoint's secret as shown when it was registered (`whsec_...`). Pass the body
exactly as received (bytes, before any JSON parsing). A delivery retried keeps its `webhook-id`:
use it to deduplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _Invalid

from genbus.client.errors import WebhookVerificationError


def verify_webhook(secret: str, body: bytes | str, headers: Mapping[str, str]) -> Any:
    """The JSON payload of a verified request; `WebhookVerificationError` if its signature,
    timestamp (more than 5 minutes off) or headers are wrong."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        return Webhook(secret).verify(body, lowered)
    except _Invalid as exc:
        raise WebhookVerificationError(str(exc) or "invalid webhook signature") from None
    except ValueError as exc:  # a malformed secret or body
        raise WebhookVerificationError(f"cannot verify: {exc}") from None


def webhook_id(headers: Mapping[str, str]) -> str | None:
    """The delivery's id, stable across its retries (a key to deduplicate by)."""
    return next((v for k, v in headers.items() if k.lower() == "webhook-id"), None)
