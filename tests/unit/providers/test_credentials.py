from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet

from genbus.providers import CredentialCipher, CredentialDecryptError, Credentials

SECRET = "sk-live-0123456789abcdef"


def test_repr_str_and_format_show_names_but_never_values() -> None:
    creds = Credentials({"api_key": SECRET}, account_secret="hunter2-long")

    for shown in (repr(creds), str(creds), f"{creds}", f"{creds!r}", format(creds)):
        assert SECRET not in shown
        assert "hunter2-long" not in shown
        assert "api_key" in shown
        assert "account_secret" in shown


def test_a_dataclass_holding_credentials_does_not_leak_them() -> None:
    @dataclass
    class Holder:
        credentials: Credentials

    assert SECRET not in repr(Holder(Credentials(api_key=SECRET)))


def test_values_are_read_by_name() -> None:
    creds = Credentials(api_key=SECRET)
    assert creds.get("api_key") == SECRET
    assert creds.require("api_key") == SECRET
    assert creds.get("other") is None
    assert "api_key" in creds
    assert creds.names() == ("api_key",)
    assert len(creds) == 1


def test_require_names_the_missing_key_only() -> None:
    with pytest.raises(KeyError, match="token") as info:
        Credentials(api_key=SECRET).require("token")
    assert SECRET not in str(info.value)


def test_credentials_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Credentials(api_key=SECRET))


def test_values_must_be_strings() -> None:
    with pytest.raises(TypeError):
        Credentials({"api_key": 123})  # type: ignore[dict-item]


def test_redact_masks_every_value() -> None:
    creds = Credentials(api_key=SECRET, other="abcdefgh")
    assert creds.redact(f"bad key {SECRET} and abcdefgh") == "bad key *** and ***"


def test_equality_compares_values() -> None:
    assert Credentials(api_key=SECRET) == Credentials({"api_key": SECRET})
    assert Credentials(api_key=SECRET) != Credentials(api_key="other")


def test_cipher_round_trip() -> None:
    cipher = CredentialCipher([CredentialCipher.generate_key()])
    creds = Credentials(api_key=SECRET, region="eu")

    token = cipher.encrypt(creds)

    assert SECRET not in token
    assert cipher.decrypt(token) == creds
    assert cipher.decrypt(cipher.encrypt({"api_key": SECRET})) == Credentials(api_key=SECRET)


def test_rotation_new_key_encrypts_old_keys_still_decrypt() -> None:
    old_key, new_key = CredentialCipher.generate_key(), CredentialCipher.generate_key()
    creds = Credentials(api_key=SECRET)
    old_token = CredentialCipher([old_key]).encrypt(creds)

    rotating = CredentialCipher([new_key, old_key])
    assert rotating.decrypt(old_token) == creds
    rotated = rotating.rotate(old_token)

    new_only = CredentialCipher([new_key])
    assert new_only.decrypt(rotated) == creds
    with pytest.raises(CredentialDecryptError):
        new_only.decrypt(old_token)
    # What the rotating cipher writes is readable without the old key.
    assert new_only.decrypt(rotating.encrypt(creds)) == creds


def test_from_key_list_parses_comma_separated_keys_newest_first() -> None:
    old_key, new_key = CredentialCipher.generate_key(), CredentialCipher.generate_key()
    cipher = CredentialCipher.from_key_list(f" {new_key} , {old_key} ")
    token = cipher.encrypt(Credentials(api_key=SECRET))
    assert CredentialCipher([new_key]).decrypt(token).get("api_key") == SECRET


@pytest.mark.parametrize("token", ["not-a-token", "", "é"])
def test_unreadable_tokens_raise_without_echoing_them(token: str) -> None:
    cipher = CredentialCipher([CredentialCipher.generate_key()])
    with pytest.raises(CredentialDecryptError) as info:
        cipher.decrypt(token)
    assert str(info.value) == "credentials token is invalid for every key"
    with pytest.raises(CredentialDecryptError):
        cipher.rotate(token)


def test_a_token_that_is_not_a_string_mapping_is_refused() -> None:
    key = CredentialCipher.generate_key()
    cipher = CredentialCipher([key])
    for payload in (b"[1, 2]", b'{"api_key": 5}', b"not json"):
        with pytest.raises(CredentialDecryptError):
            cipher.decrypt(Fernet(key).encrypt(payload).decode())


def test_cipher_needs_keys_and_never_shows_them() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        CredentialCipher([])
    key = CredentialCipher.generate_key()
    with pytest.raises(TypeError):
        CredentialCipher(key)
    assert key not in repr(CredentialCipher([key]))


def test_generated_keys_are_distinct_valid_fernet_keys() -> None:
    first, second = CredentialCipher.generate_key(), CredentialCipher.generate_key()
    assert first != second
    Fernet(first)  # raises if malformed
