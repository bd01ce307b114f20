"""Provider credentials: a container that never shows its values, and their encryption at rest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import NoReturn

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

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
        try:
            values = json.loads(payload)
        except ValueError as exc:
            raise CredentialDecryptError("credentials token does not hold JSON") from exc
        if not isinstance(values, dict) or not _all_str(values.items()):
            raise CredentialDecryptError("credentials token does not hold a string mapping")
        return Credentials(values)

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
