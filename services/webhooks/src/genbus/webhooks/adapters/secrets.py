"""Signing secrets at rest: Fernet-encrypted with the configured keys (the first encrypts,
every one decrypts, so keys can be rotated)."""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet


class FernetSecretCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])

    @classmethod
    def from_key_list(cls, keys: str) -> FernetSecretCipher:
        """From `key1,key2,...` (GENBUS_WEBHOOKS_SECRET_KEYS)."""
        return cls([key.strip() for key in keys.split(",") if key.strip()])

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
