"""Account directory entries are sealed whole: moved or edited in the real KV bucket, they do
not open in the poller, and the generation fails with a clear code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from genbus.contracts import (
    ACCOUNT_CREDENTIALS_UNREADABLE,
    ACCOUNT_DIRECTORY,
    AccountDirectoryEntry,
    GenerationSubmitted,
)
from genbus.devstack.nats import NatsServer
from genbus.poller.adapters.account_directory import AccountDirectory
from genbus.poller.service_layer.accounts import Unusable, account_for
from genbus.providers import CredentialCipher, Credentials
from genbus.runtime.nats_client import connect_nats

pytestmark = pytest.mark.integration
CIPHER = CredentialCipher([CredentialCipher.generate_key()])
SECRET = "sk-live-secret"


def submitted(account_id: str) -> GenerationSubmitted:
    now = datetime.now(UTC)
    return GenerationSubmitted(
        event_id=uuid4(),
        occurred_at=now,
        generation_id=uuid4(),
        user_id="u1",
        provider_id="sim",
        operation_type="text_to_video",
        account_id=account_id,
        provider_job_id="job-1",
        attempt=1,
        deadline_at=now + timedelta(hours=1),
    )


async def test_a_copied_or_edited_entry_fails_the_generation(nats_server: NatsServer) -> None:
    entry = AccountDirectoryEntry(
        account_id="acc-1", provider_id="sim", base_url="https://sim.test", sealed_credentials=""
    )
    sealed = entry.model_copy(
        update={"sealed_credentials": CIPHER.seal({"api_key": SECRET}, entry.bound_fields())}
    )
    writer = await connect_nats(nats_server.url_for("dispatcher"))
    reader = await connect_nats(nats_server.url_for("poller"))
    try:
        kv = await writer.jetstream().key_value(ACCOUNT_DIRECTORY.bucket)
        directory = AccountDirectory(
            await reader.jetstream().key_value(ACCOUNT_DIRECTORY.bucket), CIPHER, ttl_s=0.0
        )
        await kv.put("acc-1", sealed.model_dump_json().encode())
        assert (await directory.get("acc-1")).credentials == Credentials(api_key=SECRET)

        # What a holder of write access could do: copy the entry under another id, or point
        # it at another host (the poller would send the key there).
        original = json.loads(sealed.model_dump_json())
        await kv.put("acc-2", json.dumps(original | {"account_id": "acc-2"}).encode())
        await kv.put("acc-1", json.dumps(original | {"base_url": "https://evil.test"}).encode())

        for account_id in ("acc-2", "acc-1"):
            event = submitted(account_id)
            outcome = await account_for(directory, event, grace_s=5.0, now=event.occurred_at)
            assert isinstance(outcome, Unusable), account_id
            assert outcome.failure == ACCOUNT_CREDENTIALS_UNREADABLE
            assert SECRET not in outcome.reason
    finally:
        await writer.close()
        await reader.close()
