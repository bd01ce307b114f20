"""Provider credentials: a container that never shows its values, and their encryption at rest.

At rest (the dispatcher's database) credentials are Fernet tokens. In the account directory they
are sealed (AES-GCM) with the rest of the entry as associated data, so an entry moved or edited
outside the dispatcher does not open (`CredentialCipher.seal` / `unseal`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASK = "***"


class Credentials:
    """Named secrets of one provider account, e.g. `{"api_key": "..."}`.

    Deliberately not a `Mapping`: `dict(creds)`, `repr` and `str` must never spill the values.
    Read a value with `get` or `require`; `reveal` exists only for encryption.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None, /, **kwargs: str) -> None:
        merged = {**(values or {}), **kwargs}
        for name, value in merged.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("credential names and values must be strings")
        self._values: Mapping[str, str] = MappingProxyType(merged)

    def get(self, name: str) -> str | None:
        """The value named `name`, or None."""
        return self._values.get(name)

    def require(self, name: str) -> str:
        """The value named `name`; KeyError (naming only the key) when it is missing."""
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"credential {name!r} is missing") from None

    def names(self) -> tuple[str, ...]:
        """The credential names, sorted; never the values."""
        return tuple(sorted(self._values))

    def reveal(self) -> dict[str, str]:
        """A plain copy of the values, for encryption. Never log it."""
        return dict(self._values)

    def redact(self, text: str) -> str:
        """`text` with every credential value replaced by a mask (for provider error messages)."""
        for value in sorted(self._values.values(), key=len, reverse=True):
            if value:
                text = text.replace(value, MASK)
        return text

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return dict(self._values) == dict(other._values)

    def __hash__(self) -> int:
        return hash(frozenset(self._values.items()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={MASK}" for name in self.names())
        return f"Credentials({shown})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Pickling would write the values somewhere we do not control (queues, caches).
        raise TypeError("Credentials cannot be pickled")


class CredentialDecryptError(ValueError):
    """A credentials token is not readable with any configured key, or is not credentials."""


class CredentialCipher:
    """Fernet encryption of credentials. The first key encrypts; every key decrypts (rotation)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes):
            raise TypeError("pass a sequence of keys, e.g. [key]")
        if not keys:
            raise ValueError("at least one key is required")
        # Fernet's own error for a malformed key never includes the key.
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self._key_count = len(keys)
        self._seal_keys = [_seal_key(key) for key in keys]

    @classmethod
    def from_key_list(cls, value: str) -> CredentialCipher:
        """A cipher from comma-separated keys (newest first), as kept in settings."""
        return cls([key.strip() for key in value.split(",") if key.strip()])

    @staticmethod
    def generate_key() -> str:
        """A new random key."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, credentials: Credentials | Mapping[str, str]) -> str:
        """A token holding `credentials`."""
        values = credentials.reveal() if isinstance(credentials, Credentials) else dict(credentials)
        Credentials(values)  # validates names and values are strings
        payload = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
        return self._fernet.encrypt(payload).decode("ascii")

    def decrypt(self, token: str) -> Credentials:
        """The credentials in `token`; CredentialDecryptError if no key reads it."""
        try:
            payload = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise CredentialDecryptError("credentials token is invalid for every key") from exc
        return _credentials_from(payload)

    def seal(self, credentials: Credentials | Mapping[str, str], bound: bytes) -> str:
        """`credentials` encrypted and authenticated together with `bound` (AES-GCM associated
        data, e.g. the rest of an account entry): `unseal` with other `bound` bytes fails."""
        values = credentials.reveal() if isinstance(credentials, Credentials) else dict(credentials)
        Credentials(values)
        payload = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(self._seal_keys[0]).encrypt(nonce, payload, bound)
        return SEAL_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

    def unseal(self, token: str, bound: bytes) -> Credentials:
        """The credentials sealed with exactly `bound`; CredentialDecryptError otherwise (a
        token moved to another entry, an edited entry, or no key of ours)."""
        if not token.startswith(SEAL_PREFIX):
            raise CredentialDecryptError("not a sealed credentials token")
        try:
            raw = base64.urlsafe_b64decode(token[len(SEAL_PREFIX) :].encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise CredentialDecryptError("sealed credentials are not base64") from exc
        nonce, sealed = raw[:12], raw[12:]
        for key in self._seal_keys:
            try:
                payload = AESGCM(key).decrypt(nonce, sealed, bound)
            except InvalidTag:
                continue
            return _credentials_from(payload)
        raise CredentialDecryptError(
            "sealed credentials do not open for this entry with any key "
            "(moved to another account, entry edited, or unknown key)"
        )

    def rotate(self, token: str) -> str:
        """`token` re-encrypted with the first key (run after adding a new key in front)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise CredentialDecryptError("credentials token is invalid for every key") from exc

    def __repr__(self) -> str:
        return f"CredentialCipher(keys={self._key_count})"


def _all_str(items: Iterable[tuple[object, object]]) -> bool:
    return all(isinstance(k, str) and isinstance(v, str) for k, v in items)


def _credentials_from(payload: bytes) -> Credentials:
    try:
        values = json.loads(payload)
    except ValueError as exc:
        raise CredentialDecryptError("credentials token does not hold JSON") from exc
    if not isinstance(values, dict) or not _all_str(values.items()):
        raise CredentialDecryptError("credentials token does not hold a string mapping")
    return Credentials(values)


#: Sealed tokens (AES-256-GCM, key derived from a Fernet key) start with this.
SEAL_PREFIX = "seal1."
_SEAL_INFO = b"genbus account directory entry seal v1"


def _seal_key(fernet_key: str | bytes) -> bytes:
    """A 256-bit AES-GCM key derived from a Fernet key: one secret to configure and rotate."""
    raw = fernet_key.encode("ascii") if isinstance(fernet_key, str) else fernet_key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
        base64.urlsafe_b64decode(raw)
    )
