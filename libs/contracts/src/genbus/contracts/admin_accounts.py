"""The provider-account fields of the dispatcher's admin API: `POST`/`PATCH /admin/accounts`.

One table says which fields an account has, which a create needs, which an update may change or
clear with null, and the ranges the dispatcher enforces. The dispatcher derives its request
models, its storage's updatable columns and its checks from it; `genbus accounts` and
`genbus-dispatcher accounts` their options (`genbus.contracts.account_options`). Which
operations an account may serve depends on its provider: the dispatcher checks that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

#: A credential's name (its value is secret and write-only).
CREDENTIAL_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
_CREDENTIAL_NAME = re.compile(CREDENTIAL_NAME_PATTERN)


class FieldKind(StrEnum):
    INTEGER = "integer"
    TEXT = "text"
    URL = "url"  # http or https
    NAMES = "names"  # a list of names; comma-separated on a command line
    CREDENTIALS = "credentials"  # name -> secret value; write-only, replaced as a whole


@dataclass(frozen=True, kw_only=True)
class AccountField:
    """One field of an account as the admin API accepts it."""

    name: str
    kind: FieldKind
    help: str
    required: bool = False  # on create; an update never needs a field
    default: int | str | None = None  # on create, when not given
    updatable: bool = True
    nullable: bool = False  # null means "not set": optional on create, cleared by an update
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None  # characters, entries or credentials
    max_length: int | None = None
    #: NAMES: what one entry names (in messages and the command line's metavar).
    item: str = "name"
    #: The command line's spelling, when not `--name-with-dashes`.
    flag: str | None = None

    def __post_init__(self) -> None:
        if not (self.required or self.nullable or self.default is not None):
            raise ValueError(f"{self.name}: an optional field needs a default or to be nullable")

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def clearable(self) -> bool:
        """Whether an update may send null to reset it to "not set"."""
        return self.updatable and self.nullable

    def problem(self, value: object) -> str | None:
        """Why `value` is refused for this field, or None. Never quotes the value."""
        if value is None:
            return None if self.nullable else f"{self.name} cannot be null"
        if self.kind is FieldKind.INTEGER:
            return self._integer_problem(value)
        if self.kind is FieldKind.TEXT:
            shortest = self.min_length or 1
            if (
                not isinstance(value, str)
                or len(value.strip()) < shortest
                or (self.max_length is not None and len(value) > self.max_length)
            ):
                longest = f" to {self.max_length}" if self.max_length is not None else " or more"
                return f"{self.name} must be {shortest}{longest} characters"
            return None
        if self.kind is FieldKind.URL:
            parts = urlsplit(str(value))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return f"{self.name} must be an http(s) URL"
            if self.max_length is not None and len(str(value)) > self.max_length:
                return f"{self.name} must be at most {self.max_length} characters"
            return None
        if self.kind is FieldKind.NAMES:
            if not isinstance(value, Sequence) or isinstance(value, str):
                return f"{self.name} must be a list of {self.item}s"
            if self.min_length and len(value) < self.min_length:
                null = " (or be null: all)" if self.nullable else ""
                return f"{self.name} must name at least one {self.item}{null}"
            return None
        return self._credentials_problem(value)

    def _integer_problem(self, value: object) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{self.name} must be an integer"
        if self.minimum is not None and value < self.minimum:
            if self.minimum == 0:
                return f"{self.name} cannot be negative"
            return f"{self.name} must be at least {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be at most {self.maximum}"
        return None

    def _credentials_problem(self, value: object) -> str | None:
        """Names and emptiness only: a value is never echoed, nor is a name that may be one."""
        if not isinstance(value, Mapping) or len(value) < (self.min_length or 0):
            return "at least one credential is required"
        for name, secret in value.items():
            if not isinstance(name, str) or not _CREDENTIAL_NAME.fullmatch(name):
                return (
                    "credential names are 1 to 64 letters, digits, '_', '.' or '-', from a letter"
                )
            if not secret:
                return f"credential {name!r} is empty"
        return None


ACCOUNT_FIELDS: tuple[AccountField, ...] = (
    AccountField(
        name="provider_id",
        kind=FieldKind.TEXT,
        help="the provider, e.g. pixverse, replicate, sim",
        required=True,
        updatable=False,
        min_length=1,
        max_length=32,
        flag="--provider",
    ),
    AccountField(
        name="label",
        kind=FieldKind.TEXT,
        help="unique; the account's id is made from it",
        required=True,
        min_length=1,
        max_length=100,
    ),
    AccountField(
        name="max_concurrent",
        kind=FieldKind.INTEGER,
        help="jobs in flight at once",
        required=True,
        minimum=1,
        maximum=100_000,
    ),
    AccountField(
        name="priority",
        kind=FieldKind.INTEGER,
        help="higher is preferred (default 0)",
        default=0,
        minimum=-1000,
        maximum=1000,
    ),
    AccountField(
        name="base_url",
        kind=FieldKind.URL,
        help="the provider's API; default: its public one",
        nullable=True,
        max_length=500,
    ),
    AccountField(
        name="operations",
        kind=FieldKind.NAMES,
        help="comma-separated operations it may serve; default: all of the provider's",
        nullable=True,
        min_length=1,
        item="operation",
    ),
    AccountField(
        name="daily_cap",
        kind=FieldKind.INTEGER,
        help="submissions per UTC day; default: no cap",
        nullable=True,
        minimum=1,
    ),
    AccountField(
        name="credits",
        kind=FieldKind.INTEGER,
        help="credits left, when known",
        nullable=True,
        minimum=0,
    ),
    AccountField(
        name="credentials",
        kind=FieldKind.CREDENTIALS,
        help="write-only; an update replaces the whole set",
        required=True,
        min_length=1,
    ),
)


def fields_by_name(fields: Sequence[AccountField] = ACCOUNT_FIELDS) -> dict[str, AccountField]:
    return {f.name: f for f in fields}


def clearable(fields: Sequence[AccountField] = ACCOUNT_FIELDS) -> tuple[str, ...]:
    """The fields an update may send as null, in table order."""
    return tuple(f.name for f in fields if f.clearable)
