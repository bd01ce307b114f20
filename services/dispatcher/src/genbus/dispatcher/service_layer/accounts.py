"""Managing provider accounts: what the admin API and `genbus-dispatcher accounts` both call.

Credentials come in as `Credentials` (which never show their values), are encrypted here and
leave only as ciphertext; what goes out is an `AccountView`, which has their names only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from genbus.contracts.admin_accounts import ACCOUNT_FIELDS, FieldKind, fields_by_name
from genbus.dispatcher.adapters.accounts_store import AccountExists, AccountView
from genbus.dispatcher.domain.model import AccountStatus
from genbus.dispatcher.service_layer import audit
from genbus.dispatcher.service_layer.audit import SYSTEM_ACTOR
from genbus.dispatcher.service_layer.base_urls import STRICT, BaseUrlPolicy, base_url_problem
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork
from genbus.providers import CredentialCipher, CredentialDecryptError, Credentials
from genbus.providers.capabilities import PROVIDER_OPERATIONS
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

_MAX_REASON = 500
_FIELDS = fields_by_name(ACCOUNT_FIELDS)
#: What `AccountChanges.values` may hold: the updatable fields but credentials.
CHANGEABLE = frozenset(
    f.name for f in ACCOUNT_FIELDS if f.updatable and f.kind is not FieldKind.CREDENTIALS
)
#: Fields seeding never writes: credits are a running balance that re-seeding must not reset.
NOT_SEEDED = frozenset({"credits"})


class AccountError(Exception):
    """A refused account operation; `code` is stable, the message never holds a secret."""

    code: ClassVar[str] = "account_error"


class AccountNotFound(AccountError):
    code = "account_not_found"


class AccountConflict(AccountError):
    code = "account_conflict"


class InvalidAccount(AccountError):
    code = "invalid_account"


class CredentialsRequired(AccountError):
    """A new `base_url` without the credentials: a key is never sent to a host it was not
    given for."""

    code = "credentials_required"


@dataclass(frozen=True, kw_only=True)
class NewAccount:
    """An account to create: one attribute per contract field (`ACCOUNT_FIELDS`)."""

    provider_id: str
    label: str
    credentials: Credentials
    max_concurrent: int
    priority: int = 0
    base_url: str | None = None
    operations: Sequence[str] | None = None  # None: every operation of the provider
    daily_cap: int | None = None
    credits: int | None = None


@dataclass(frozen=True, kw_only=True)
class AccountChanges:
    """Only the fields present in `values` change; None clears a nullable one.

    `values` keys are from `CHANGEABLE`; `credentials`, when given, replace the whole set.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    credentials: Credentials | None = None


@dataclass(frozen=True)
class RotationReport:
    rotated: int
    #: Accounts whose credentials no configured key can read (left as they are).
    unreadable: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"rotated": self.rotated, "unreadable": self.unreadable}


async def list_accounts(uow: AbstractUnitOfWork) -> list[AccountView]:
    async with uow:
        return await uow.accounts.list_accounts()


async def get_account(uow: AbstractUnitOfWork, account_id: str) -> AccountView:
    async with uow:
        return await _view_or_404(uow, account_id)


async def create_account(
    uow: AbstractUnitOfWork,
    cipher: CredentialCipher,
    new: NewAccount,
    *,
    actor: str = SYSTEM_ACTOR,
    policy: BaseUrlPolicy = STRICT,
) -> AccountView:
    """Create an account; AccountConflict when its label is taken."""
    _check_new_account(new, seeding=False, policy=policy)
    async with uow:
        try:
            account_id = await uow.accounts.insert_account(
                provider_id=new.provider_id,
                label=new.label,
                credentials_ciphertext=cipher.encrypt(new.credentials),
                credential_names=new.credentials.names(),
                max_concurrent=new.max_concurrent,
                priority=new.priority,
                base_url=new.base_url,
                operations=new.operations,
                daily_cap=new.daily_cap,
                credits=new.credits,
            )
        except AccountExists:
            raise AccountConflict(f"an account labelled {new.label!r} exists") from None
        view = await _view_or_404(uow, account_id)
        await _audit(uow, actor, "account.create", None, view)
        await uow.commit()
    log.info(
        "account created",
        account_id=account_id,
        provider_id=new.provider_id,
        credential_names=list(new.credentials.names()),
    )
    return view


async def seed_account(
    uow: AbstractUnitOfWork,
    cipher: CredentialCipher,
    new: NewAccount,
    *,
    actor: str = SYSTEM_ACTOR,
    policy: BaseUrlPolicy = STRICT,
) -> AccountView:
    """Create the account, or overwrite the one with this label (bootstrap, idempotent)."""
    _check_new_account(new, seeding=True, policy=policy)
    async with uow:
        before = next((a for a in await uow.accounts.list_accounts() if a.label == new.label), None)
        account_id = await uow.accounts.upsert_account(
            provider_id=new.provider_id,
            label=new.label,
            credentials_ciphertext=cipher.encrypt(new.credentials),
            credential_names=new.credentials.names(),
            max_concurrent=new.max_concurrent,
            priority=new.priority,
            base_url=new.base_url,
            operations=new.operations,
            daily_cap=new.daily_cap,
        )
        view = await _view_or_404(uow, account_id)
        await _audit(uow, actor, "account.seed", before, view)
        await uow.commit()
        return view


async def update_account(
    uow: AbstractUnitOfWork,
    cipher: CredentialCipher,
    account_id: str,
    changes: AccountChanges,
    *,
    actor: str = SYSTEM_ACTOR,
    policy: BaseUrlPolicy = STRICT,
) -> AccountView:
    """Apply `changes`; AccountNotFound, AccountConflict (label taken), InvalidAccount, or
    CredentialsRequired (a new base URL without its credentials)."""
    values = dict(changes.values)
    _check_fields(values)
    if "base_url" in values:
        _check_base_url(values["base_url"], policy)
    if changes.credentials is not None:
        _check_credentials(changes.credentials)
        values["credentials_ciphertext"] = cipher.encrypt(changes.credentials)
        values["credential_names"] = list(changes.credentials.names())
    async with uow:
        provider_id = await uow.accounts.lock_account(account_id)
        if provider_id is None:
            raise AccountNotFound(f"no account {account_id!r}")
        before = await _view_or_404(uow, account_id)
        if (
            "base_url" in values
            and values["base_url"] != before.base_url
            and changes.credentials is None
        ):
            raise CredentialsRequired(
                "changing base_url requires sending the account's credentials again"
            )
        if "operations" in values:
            _check_provider(provider_id, values["operations"])
        try:
            await uow.accounts.update_account(account_id, values)
        except AccountExists:
            raise AccountConflict(f"an account labelled {values.get('label')!r} exists") from None
        view = await _view_or_404(uow, account_id)
        await _audit(uow, actor, "account.update", before, view)
        await uow.commit()
    log.info(
        "account updated",
        account_id=account_id,
        fields=sorted(k for k in values if k != "credentials_ciphertext"),
    )
    return view


async def disable_account(
    uow: AbstractUnitOfWork, account_id: str, reason: str, *, actor: str = SYSTEM_ACTOR
) -> AccountView:
    """Stop using the account (its in-flight jobs finish); `reason` is shown to operators."""
    reason = reason.strip()
    if not reason:
        raise InvalidAccount("a reason is required to disable an account")
    async with uow:
        before = await _view_or_404(uow, account_id)
        if not await uow.accounts.set_status(
            account_id, AccountStatus.DISABLED, reason[:_MAX_REASON]
        ):
            raise AccountNotFound(f"no account {account_id!r}")
        view = await _view_or_404(uow, account_id)
        await _audit(uow, actor, "account.disable", before, view)
        await uow.commit()
    log.info("account disabled", account_id=account_id, reason=reason[:_MAX_REASON])
    return view


async def enable_account(
    uow: AbstractUnitOfWork, account_id: str, *, actor: str = SYSTEM_ACTOR
) -> AccountView:
    """Make the account usable again now: active, no cooldown, breaker closed, no reason.

    Credits recorded as spent (0) become unknown: the operator says there are some again.
    """
    async with uow:
        before = await _view_or_404(uow, account_id)
        if not await uow.accounts.set_status(
            account_id, AccountStatus.ACTIVE, None, clear_cooldown=True
        ):
            raise AccountNotFound(f"no account {account_id!r}")
        view = await _view_or_404(uow, account_id)
        if view.credits == 0:
            await uow.accounts.update_account(account_id, {"credits": None})
            view = await _view_or_404(uow, account_id)
        await _audit(uow, actor, "account.enable", before, view)
        await uow.commit()
    log.info("account enabled", account_id=account_id)
    return view


async def rotate_credentials(
    uow: AbstractUnitOfWork, cipher: CredentialCipher, *, actor: str = SYSTEM_ACTOR
) -> RotationReport:
    """Re-encrypt every account's credentials with the cipher's first key.

    Run after putting a new key first in GENBUS_CREDENTIALS_KEYS (old keys still listed), then
    drop the old keys. Every replica (and the poller) must know the new key before this runs.
    """
    rotated = 0
    unreadable: list[str] = []
    async with uow:
        for account_id, ciphertext in await uow.accounts.credentials_for_update():
            try:
                credentials = cipher.decrypt(ciphertext)
            except CredentialDecryptError:
                unreadable.append(account_id)
                continue
            await uow.accounts.update_account(
                account_id,
                {
                    "credentials_ciphertext": cipher.encrypt(credentials),
                    "credential_names": list(credentials.names()),
                },
            )
            rotated += 1
        report = RotationReport(rotated=rotated, unreadable=unreadable)
        await audit.record(
            uow, actor=actor, action="credentials.rotate", target="*", after=report.as_dict()
        )
        await uow.commit()
    log.info("credentials re-encrypted", rotated=rotated, unreadable=unreadable)
    return report


async def _audit(
    uow: AbstractUnitOfWork, actor: str, action: str, before: AccountView | None, view: AccountView
) -> None:
    await audit.record(
        uow,
        actor=actor,
        action=action,
        target=view.id,
        before=before.as_dict() if before else None,
        after=view.as_dict(),
    )


async def _view_or_404(uow: AbstractUnitOfWork, account_id: str) -> AccountView:
    view = await uow.accounts.get_account(account_id)
    if view is None:
        raise AccountNotFound(f"no account {account_id!r}")
    return view


def _check_provider(provider_id: str, operations: Sequence[str] | None) -> None:
    supported = PROVIDER_OPERATIONS.get(provider_id)
    if supported is None:
        raise InvalidAccount(
            f"unknown provider {provider_id!r}; known: {', '.join(sorted(PROVIDER_OPERATIONS))}"
        )
    unsupported = sorted(set(operations or ()) - supported)
    if unsupported:
        raise InvalidAccount(f"{provider_id} does not support {', '.join(unsupported)}")


def _check_new_account(new: NewAccount, *, seeding: bool, policy: BaseUrlPolicy = STRICT) -> None:
    """What creating or seeding checks (seeding does not write `NOT_SEEDED`: not checked)."""
    _check_provider(new.provider_id, new.operations)
    _check_values(
        {
            f.name: getattr(new, f.name)
            for f in ACCOUNT_FIELDS
            if f.kind is not FieldKind.CREDENTIALS and not (seeding and f.name in NOT_SEEDED)
        }
    )
    _check_credentials(new.credentials)
    _check_base_url(new.base_url, policy)


def _check_base_url(url: str | None, policy: BaseUrlPolicy) -> None:
    """After the field's own check (an http(s) URL): where credentials may be sent."""
    if (problem := _FIELDS["base_url"].problem(url)) or (problem := base_url_problem(url, policy)):
        raise InvalidAccount(problem)


def _check_fields(values: Mapping[str, Any]) -> None:
    """An update's values: changeable fields, each acceptable."""
    unknown = set(values) - CHANGEABLE
    if unknown:
        raise InvalidAccount(f"cannot change {', '.join(sorted(unknown))}")
    _check_values(values)


def _check_values(values: Mapping[str, Any]) -> None:
    """Each value against its field's rules, in the contract's order (the first problem)."""
    for f in ACCOUNT_FIELDS:
        if f.name in values and (problem := f.problem(values[f.name])):
            raise InvalidAccount(problem)


def _check_credentials(credentials: Credentials) -> None:
    named = {name: credentials.require(name) for name in credentials.names()}
    if problem := _FIELDS["credentials"].problem(named):
        raise InvalidAccount(problem)
