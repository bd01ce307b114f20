"""One account model: the admin API's bodies, the store's updatable columns, the service layer's
checks and both CLIs' options all follow `ACCOUNT_FIELDS`, and a field added there reaches each."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from genbus.cli.__main__ import build_parser
from genbus.contracts.account_options import account_values, add_account_options
from genbus.contracts.admin_accounts import (
    ACCOUNT_FIELDS,
    AccountField,
    FieldKind,
    clearable,
)
from genbus.dispatcher.adapters.accounts_store import (
    UPDATABLE,
    AccountView,
    json_columns,
    updatable_columns,
)
from genbus.dispatcher.entrypoints.admin_models import AccountCreate, AccountUpdate, account_models
from genbus.dispatcher.entrypoints.cli import _parser as dispatcher_parser
from genbus.dispatcher.service_layer import accounts
from genbus.providers import Credentials

README = Path(__file__).resolve().parents[3] / "README.md"
NAMES = [f.name for f in ACCOUNT_FIELDS]
UPDATABLE_FIELDS = [f.name for f in ACCOUNT_FIELDS if f.updatable]

#: The table with fields added: one of each kind of rule a new field may bring.
EXTENDED = (
    *ACCOUNT_FIELDS,
    AccountField(name="region", kind=FieldKind.TEXT, help="where", nullable=True, max_length=8),
    AccountField(
        name="weight", kind=FieldKind.INTEGER, help="share", default=1, minimum=1, maximum=9
    ),
    AccountField(name="models", kind=FieldKind.NAMES, help="models", nullable=True, min_length=1),
    AccountField(name="tier", kind=FieldKind.TEXT, help="set once", updatable=False, default="a"),
)
CREATE = {"provider_id": "sim", "label": "a", "max_concurrent": 1, "credentials": {"k": "v"}}


def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[name]
    return parser


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}


def _built(fields: Sequence[AccountField], *, update: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_account_options(parser, update=update, fields=fields)
    return parser


# -- the table ---------------------------------------------------------------------------


def test_the_table_says_what_each_field_allows() -> None:
    fields = {f.name: f for f in ACCOUNT_FIELDS}
    assert NAMES == [
        "provider_id", "label", "max_concurrent", "priority", "base_url", "operations",
        "daily_cap", "credits", "credentials",
    ]  # fmt: skip
    assert clearable() == ("base_url", "operations", "daily_cap", "credits")
    assert [f.name for f in ACCOUNT_FIELDS if f.required] == [
        "provider_id", "label", "max_concurrent", "credentials",
    ]  # fmt: skip
    assert [f.name for f in ACCOUNT_FIELDS if not f.updatable] == ["provider_id"]
    assert (fields["max_concurrent"].minimum, fields["daily_cap"].minimum) == (1, 1)
    assert (fields["credits"].minimum, fields["priority"].default) == (0, 0)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("max_concurrent", 0, "max_concurrent must be at least 1"),
        ("max_concurrent", 100_001, "max_concurrent must be at most 100000"),
        ("max_concurrent", None, "max_concurrent cannot be null"),
        ("priority", -1001, "priority must be at least -1000"),
        ("priority", True, "priority must be an integer"),
        ("daily_cap", 0, "daily_cap must be at least 1"),
        ("daily_cap", None, None),
        ("credits", -1, "credits cannot be negative"),
        ("credits", 0, None),
        ("label", " ", "label must be 1 to 100 characters"),
        ("label", "x" * 101, "label must be 1 to 100 characters"),
        ("base_url", "ftp://example.com", "base_url must be an http(s) URL"),
        ("base_url", "https://" + "x" * 500, "base_url must be at most 500 characters"),
        ("base_url", "https://example.com", None),
        ("operations", [], "operations must name at least one operation (or be null: all)"),
        ("operations", "text_to_video", "operations must be a list of operations"),
        ("operations", None, None),
        ("credentials", {}, "at least one credential is required"),
        ("credentials", {"k": ""}, "credential 'k' is empty"),
    ],
)
def test_a_field_names_its_problem(name: str, value: object, problem: str | None) -> None:
    [field] = [f for f in ACCOUNT_FIELDS if f.name == name]
    assert field.problem(value) == problem


def test_a_credential_name_that_may_be_a_secret_is_never_quoted() -> None:
    [field] = [f for f in ACCOUNT_FIELDS if f.kind is FieldKind.CREDENTIALS]
    problem = field.problem({"sk live 123": "v"})
    assert problem is not None
    assert "sk live" not in problem


def test_an_optional_field_needs_a_default_or_null() -> None:
    with pytest.raises(ValueError, match="needs a default"):
        AccountField(name="x", kind=FieldKind.INTEGER, help="x")


# -- the admin API's bodies ---------------------------------------------------------------


def test_the_admin_bodies_have_the_fields_of_the_table() -> None:
    assert list(AccountCreate.model_fields) == NAMES
    assert list(AccountUpdate.model_fields) == UPDATABLE_FIELDS
    assert AccountUpdate.nullable == set(clearable())
    required = {n for n, info in AccountCreate.model_fields.items() if info.is_required()}
    assert required == {f.name for f in ACCOUNT_FIELDS if f.required}


def test_a_field_added_to_the_table_is_in_the_admin_bodies() -> None:
    create, update = account_models(EXTENDED)
    body = create.model_validate({**CREATE, "region": "eu", "models": ["m1"]})
    assert (body.model_dump()["region"], body.model_dump()["weight"]) == ("eu", 1)
    refused: list[dict[str, Any]] = [
        {"region": "x" * 9},
        {"weight": 10},
        {"models": []},
        {"tier": None},
    ]
    for bad in refused:
        with pytest.raises(ValidationError):
            create.model_validate({**CREATE, **bad})
    assert set(update.model_fields) == {*UPDATABLE_FIELDS, "region", "weight", "models"}
    patch = update.model_validate({"region": None, "weight": None})
    assert patch.null_fields() == ["weight"]  # region may be cleared, weight may not
    with pytest.raises(ValidationError):
        update.model_validate({"tier": "gold"})  # not updatable: not in the body


def test_an_update_body_becomes_changes_without_its_credentials() -> None:
    body = AccountUpdate.model_validate({"daily_cap": None, "credentials": {"k": "v"}})
    changes = body.to_changes()
    assert dict(changes.values) == {"daily_cap": None}
    assert changes.credentials == Credentials(k="v")


# -- the store ----------------------------------------------------------------------------


def test_updatable_columns_are_the_updatable_fields_with_credentials_as_stored() -> None:
    columns = updatable_columns(ACCOUNT_FIELDS)
    assert columns == UPDATABLE
    assert columns == {
        "label", "base_url", "max_concurrent", "priority", "operations", "daily_cap",
        "credits", "credentials_ciphertext", "credential_names",
    }  # fmt: skip
    extended = updatable_columns(EXTENDED)
    assert extended - UPDATABLE == {"region", "weight", "models"}
    assert json_columns(EXTENDED) == {"operations", "models", "credential_names"}


def test_an_account_is_created_and_shown_with_the_fields_of_the_table() -> None:
    assert {f.name for f in dataclasses.fields(accounts.NewAccount)} == set(NAMES)
    shown = {f.name for f in dataclasses.fields(AccountView)}
    assert set(NAMES) - {"credentials"} <= shown
    assert "credential_names" in shown
    assert "credentials" not in shown


# -- the service layer's checks -----------------------------------------------------------


def test_an_update_may_change_the_updatable_fields_only() -> None:
    assert set(UPDATABLE_FIELDS) - {"credentials"} == accounts.CHANGEABLE
    for name in ("provider_id", "credentials_ciphertext", "status"):
        with pytest.raises(accounts.InvalidAccount, match=f"cannot change {name}"):
            accounts._check_fields({name: "x"})


@pytest.mark.parametrize(
    "field",
    [f for f in ACCOUNT_FIELDS if f.updatable and f.kind is not FieldKind.CREDENTIALS],
    ids=lambda f: f.name,
)
def test_the_service_layer_refuses_what_the_table_refuses(field: AccountField) -> None:
    if not field.nullable:
        with pytest.raises(accounts.InvalidAccount, match=f"{field.name} cannot be null"):
            accounts._check_fields({field.name: None})
    else:
        accounts._check_fields({field.name: None})
    for value in _out_of_range(field):
        with pytest.raises(accounts.InvalidAccount, match=field.name):
            accounts._check_fields({field.name: value})


def _out_of_range(field: AccountField) -> list[Any]:
    values: list[Any] = []
    if field.minimum is not None:
        values.append(field.minimum - 1)
    if field.maximum is not None:
        values.append(field.maximum + 1)
    if field.max_length is not None and field.kind is FieldKind.TEXT:
        values.append("x" * (field.max_length + 1))
    if field.max_length is not None and field.kind is FieldKind.URL:
        values.append("https://" + "x" * field.max_length)
    if field.min_length and field.kind is FieldKind.NAMES:
        values.append([])
    return values


def test_creating_checks_every_field_and_seeding_all_it_writes() -> None:
    def new(**changes: Any) -> accounts.NewAccount:
        fields: dict[str, Any] = {
            "provider_id": "sim",
            "label": "a",
            "credentials": Credentials(api_key="v"),
            "max_concurrent": 1,
        }
        return accounts.NewAccount(**{**fields, **changes})

    accounts._check_new_account(new(), seeding=False)
    with pytest.raises(accounts.InvalidAccount, match="priority must be at most 1000"):
        accounts._check_new_account(new(priority=1001), seeding=True)
    with pytest.raises(accounts.InvalidAccount, match="credits cannot be negative"):
        accounts._check_new_account(new(credits=-1), seeding=False)
    accounts._check_new_account(new(credits=-1), seeding=True)  # seeding never writes credits
    with pytest.raises(accounts.InvalidAccount, match="at least one credential"):
        accounts._check_new_account(new(credentials=Credentials()), seeding=False)


# -- both command lines -------------------------------------------------------------------


def _clear_choices(parser: argparse.ArgumentParser) -> list[str]:
    return list(_options(parser)["clear"].choices or [])


def test_both_command_lines_offer_the_fields_of_the_table() -> None:
    genbus, dispatcher = build_parser(), dispatcher_parser()
    for parser, omitted in ((genbus, set()), (dispatcher, accounts.NOT_SEEDED)):
        add = _options(_subparser(parser, "accounts", "add"))
        update = _options(_subparser(parser, "accounts", "update"))
        assert set(add) == {*NAMES, "credential"} - {"credentials"} - omitted
        assert set(update) == {*UPDATABLE_FIELDS, "credential", "clear"} - {"credentials"}
        assert _clear_choices(_subparser(parser, "accounts", "update")) == list(clearable())
        assert {a.dest for a in add.values() if a.required} == {
            "provider_id", "label", "max_concurrent", "credential",
        }  # fmt: skip
    assert _options(_subparser(genbus, "accounts", "add"))["provider_id"].option_strings == [
        "--provider"
    ]


def test_a_field_added_to_the_table_is_an_option_of_both_commands() -> None:
    add, update = _built(EXTENDED, update=False), _built(EXTENDED, update=True)
    assert {"region", "weight", "models", "tier"} <= set(_options(add))
    assert {"region", "weight", "models"} <= set(_options(update))
    assert "tier" not in _options(update)
    assert {"region", "models"} <= set(_clear_choices(update))
    args = update.parse_args(
        ["--region", "eu", "--weight", "3", "--models", "a, b", "--clear", "models"]
    )
    assert account_values(args, EXTENDED) == {"region": "eu", "weight": 3, "models": ["a", "b"]}
    args = update.parse_args(["--clear", "region"])
    assert account_values(args, EXTENDED) == {"region": None}


def test_command_line_values_are_what_the_api_takes() -> None:
    args = _built(ACCOUNT_FIELDS, update=False).parse_args(
        ["--provider", "sim", "--label", "a", "--max-concurrent", "2", "--credential", "k=K",
         "--operations", "text_to_video,image_to_video"]
    )  # fmt: skip
    values = account_values(args)
    assert values == {
        "provider_id": "sim",
        "label": "a",
        "max_concurrent": 2,
        "operations": ["text_to_video", "image_to_video"],
    }
    assert args.credential == ["k=K"]
    AccountCreate.model_validate({**values, "credentials": {"k": "v"}})


def test_readme_lists_the_fields_of_the_table() -> None:
    row = r"^\| `(POST|PATCH) /admin/accounts(?:/\{id\})?` \| (.*) \|$"
    rows = dict(re.findall(row, README.read_text(), re.MULTILINE))
    required, optional = rows["POST"].split("optional")
    assert re.findall(r"`(\w+)`", required) == [f.name for f in ACCOUNT_FIELDS if f.required]
    assert re.findall(r"`(\w+)`", optional) == [f.name for f in ACCOUNT_FIELDS if not f.required]
    changed, cleared = rows["PATCH"].split("`null` clears")
    assert re.findall(r"but `(\w+)`", changed) == [
        f.name for f in ACCOUNT_FIELDS if not f.updatable
    ]
    assert re.findall(r"`(\w+)`", cleared) == list(clearable())
