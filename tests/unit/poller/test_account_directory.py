"""AccountDirectory: each way an account is unusable is its own error, and none shows secrets."""

from __future__ import annotations

import json

import pytest
from nats.js.errors import InvalidKeyError, KeyNotFoundError
from nats.js.kv import KeyValue

from genbus.contracts import AccountDirectoryEntry
from genbus.poller.adapters.account_directory import (
    AccountCredentialsUnreadable,
    AccountDirectory,
    AccountEntryInvalid,
    AccountUnknown,
)
from genbus.providers import CredentialCipher, Credentials

KEY = CredentialCipher.generate_key()
CIPHER = CredentialCipher([KEY])
SECRET = "sk-live-do-not-log"


class FakeKv:
    """Key → stored bytes (None: an entry without a value); a missing key raises like NATS."""

    def __init__(self, values: dict[str, bytes | None] | None = None) -> None:
        self.values = dict(values or {})
        self.reads = 0
        self.error: Exception | None = None

    async def get(self, key: str) -> KeyValue.Entry:
        self.reads += 1
        if self.error is not None:
            raise self.error
        if key not in self.values:
            raise KeyNotFoundError
        return KeyValue.Entry(
            bucket="accounts",
            key=key,
            value=self.values[key],
            revision=1,
            delta=None,
            created=None,
            operation=None,
        )


def _entry(account_id: str = "acc-1", cipher: CredentialCipher = CIPHER) -> bytes:
    """An entry as the dispatcher writes it: credentials sealed with the other fields."""
    entry = AccountDirectoryEntry(
        account_id=account_id,
        provider_id="sim",
        base_url="http://provider.test",
        sealed_credentials="",
    )
    sealed = cipher.seal({"api_key": SECRET}, entry.bound_fields())
    return entry.model_copy(update={"sealed_credentials": sealed}).model_dump_json().encode()


@pytest.mark.parametrize(
    "tamper",
    [
        {"account_id": "acc-9"},  # another account's entry copied under acc-9
        {"base_url": "https://attacker.example"},
        {"provider_id": "pixverse"},
        {"active": False},
    ],
    ids=["copied-under-another-id", "other-base-url", "other-provider", "other-status"],
)
async def test_a_moved_or_edited_entry_does_not_open(tamper: dict[str, object]) -> None:
    edited = json.loads(_entry())
    edited.update(tamper)
    key = str(edited["account_id"])
    directory = AccountDirectory(FakeKv({key: json.dumps(edited).encode()}), CIPHER)

    with pytest.raises(AccountCredentialsUnreadable) as raised:
        await directory.get(key)

    assert "do not open" in raised.value.reason
    assert SECRET not in str(raised.value)


async def test_a_valid_entry_gives_the_decrypted_account() -> None:
    directory = AccountDirectory(FakeKv({"acc-1": _entry()}), CIPHER)

    account = await directory.get("acc-1")

    assert account.account_id == "acc-1"
    assert account.base_url == "http://provider.test"
    assert account.credentials == Credentials(api_key=SECRET)


@pytest.mark.parametrize("error", [KeyNotFoundError(), InvalidKeyError()], ids=["missing", "bad"])
async def test_a_missing_key_is_unknown(error: Exception) -> None:
    kv = FakeKv()
    kv.error = error
    with pytest.raises(AccountUnknown) as raised:
        await AccountDirectory(kv, CIPHER).get("acc-1")
    assert raised.value.account_id == "acc-1"


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"{not json",
        b"\xff\xfe",
        json.dumps({"account_id": "acc-1", "provider_id": "sim"}).encode(),
        # The secret sits in the input pydantic would quote: the error must not repeat it.
        json.dumps(
            {"account_id": "acc-1", "provider_id": "sim", "sealed_credentials": [SECRET]}
        ).encode(),
        json.dumps([SECRET]).encode(),
        _entry(account_id="acc-2"),
    ],
    ids=[
        "no-value",
        "empty",
        "bad-json",
        "not-utf8",
        "no-ciphertext",
        "ciphertext-wrong-type",
        "not-an-object",
        "another-account",
    ],
)
async def test_an_invalid_entry_is_its_own_error_without_the_content(value: bytes | None) -> None:
    directory = AccountDirectory(FakeKv({"acc-1": value}), CIPHER)

    with pytest.raises(AccountEntryInvalid) as raised:
        await directory.get("acc-1")

    assert SECRET not in str(raised.value)
    # A chained ValidationError would print the input (the secret) in a traceback.
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__


async def test_credentials_under_another_key_are_unreadable() -> None:
    other = CredentialCipher([CredentialCipher.generate_key()])
    ciphertext = AccountDirectoryEntry.model_validate_json(_entry(cipher=other)).sealed_credentials
    directory = AccountDirectory(FakeKv({"acc-1": _entry(cipher=other)}), CIPHER)

    with pytest.raises(AccountCredentialsUnreadable) as raised:
        await directory.get("acc-1")

    assert ciphertext not in str(raised.value)
    assert "do not open for this entry with any key" in raised.value.reason


async def test_a_readable_account_is_cached_for_the_ttl() -> None:
    kv = FakeKv({"acc-1": _entry()})
    directory = AccountDirectory(kv, CIPHER, ttl_s=3600.0)

    await directory.get("acc-1")
    kv.values["acc-1"] = b"{not json"
    account = await directory.get("acc-1")

    assert kv.reads == 1
    assert account.credentials == Credentials(api_key=SECRET)


async def test_a_failure_is_not_cached() -> None:
    kv = FakeKv()
    directory = AccountDirectory(kv, CIPHER, ttl_s=3600.0)
    with pytest.raises(AccountUnknown):
        await directory.get("acc-1")

    kv.values["acc-1"] = _entry()

    assert (await directory.get("acc-1")).account_id == "acc-1"


async def test_an_expired_account_is_read_again_and_never_served_stale() -> None:
    kv = FakeKv({"acc-1": _entry()})
    directory = AccountDirectory(kv, CIPHER, ttl_s=0.0)
    await directory.get("acc-1")

    kv.values["acc-1"] = _entry(cipher=CredentialCipher([CredentialCipher.generate_key()]))

    with pytest.raises(AccountCredentialsUnreadable):
        await directory.get("acc-1")
    assert kv.reads == 2
