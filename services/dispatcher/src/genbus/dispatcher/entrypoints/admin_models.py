"""Bodies the admin API accepts. Credential values are `SecretStr` and never echoed in errors.

`AccountCreate` and `AccountUpdate` are made from the contract's account fields
(`genbus.contracts.admin_accounts.ACCOUNT_FIELDS`): their types, defaults and ranges. What needs
more than a field's own value (a provider's operations, credential names) is checked by the
service layer, which answers `invalid_account`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from genbus.contracts.admin_accounts import ACCOUNT_FIELDS, AccountField, FieldKind
from genbus.dispatcher.service_layer.accounts import AccountChanges, NewAccount
from genbus.providers import Credentials

_CONFIG = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

_TYPES: dict[FieldKind, Any] = {
    FieldKind.INTEGER: int,
    FieldKind.TEXT: str,
    FieldKind.URL: str,
    FieldKind.NAMES: list[str],
    FieldKind.CREDENTIALS: dict[str, SecretStr],
}


class AccountCreateBody(BaseModel):
    """`POST /admin/accounts`; its fields come from the contract (`account_models`)."""

    model_config = _CONFIG

    def to_new_account(self) -> NewAccount:
        values = dict(self)
        values["credentials"] = _credentials(values["credentials"])
        return NewAccount(**values)


class AccountUpdateBody(BaseModel):
    """`PATCH /admin/accounts/{id}`: only the fields sent change; null clears a nullable one."""

    model_config = _CONFIG
    #: The fields that may be sent as null (set by `account_models`).
    nullable: ClassVar[frozenset[str]] = frozenset()

    def null_fields(self) -> list[str]:
        """Fields sent as null that cannot be cleared."""
        return sorted(
            name for name in self.model_fields_set - self.nullable if getattr(self, name) is None
        )

    def to_changes(self) -> AccountChanges:
        values: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        credentials = values.pop("credentials", None)
        return AccountChanges(
            values=values,
            credentials=_credentials(credentials) if credentials else None,
        )


def account_models(
    fields: Sequence[AccountField] = ACCOUNT_FIELDS,
) -> tuple[type[AccountCreateBody], type[AccountUpdateBody]]:
    """The create and update bodies of these fields."""
    create: dict[str, Any] = {}
    update: dict[str, Any] = {}
    for field in fields:
        kind = _TYPES[field.kind]
        constraints = _constraints(field)
        if field.required:
            create[field.name] = (kind, Field(**constraints))
        elif field.nullable:
            create[field.name] = (kind | None, Field(default=None, **constraints))
        else:
            create[field.name] = (kind, Field(default=field.default, **constraints))
        if field.updatable:
            update[field.name] = (kind | None, Field(default=None, **constraints))
    create_body = create_model("AccountCreate", __base__=AccountCreateBody, **create)
    update_body = create_model("AccountUpdate", __base__=AccountUpdateBody, **update)
    update_body.nullable = frozenset(f.name for f in fields if f.clearable)
    return create_body, update_body


def _constraints(field: AccountField) -> dict[str, Any]:
    """Pydantic's spelling of the field's range, length and help (unset ones left out)."""
    constraints = {
        "ge": field.minimum,
        "le": field.maximum,
        "min_length": field.min_length,
        "max_length": field.max_length,
        "description": field.help,
    }
    return {name: value for name, value in constraints.items() if value is not None}


def _credentials(values: dict[str, SecretStr]) -> Credentials:
    return Credentials({name: value.get_secret_value() for name, value in values.items()})


AccountCreate, AccountUpdate = account_models()


class DisableRequest(BaseModel):
    model_config = _CONFIG

    reason: str = Field(min_length=1, max_length=500)
