"""`genbus-api keys create --tier`, `keys limits`, `keys show` and `usage` against a real
Postgres: what operators do with tiers, overrides and usage; bad input is one line and exit 1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from genbus.api.entrypoints.cli import main

pytestmark = pytest.mark.integration


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    main(list(args))
    return json.loads(capsys.readouterr().out)


def test_operators_manage_a_keys_tier_and_limits_and_read_usage(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    key = _run(capsys, "keys", "create", "--user", "alice", "--name", "laptop", "--tier", "free")
    assert (key["tier"], key["overrides"]) == ("free", {})
    changed = _run(
        capsys,
        "keys",
        "limits",
        key["id"],
        "--set",
        "daily_quota=500",
        "--set",
        "providers=sim,pixverse",
        "--set",
        "max_priority=null",
    )
    assert changed["tier"] == "free"
    assert changed["overrides"] == {
        "daily_quota": 500,
        "providers": ["pixverse", "sim"],
        "max_priority": None,
    }
    assert changed["limits"]["max_in_flight"] == 2  # the tier's
    assert (changed["limits"]["daily_quota"], changed["limits"]["max_priority"]) == (500, None)
    _run(capsys, "keys", "limits", key["id"], "--clear", "providers", "--tier", "pro")
    shown = _run(capsys, "keys", "show", key["id"])
    assert shown["tier"] == "pro"
    assert shown["limits"]["providers"] is None
    assert shown["limits"]["daily_quota"] == 500
    assert _run(capsys, "keys", "list", "--user", "alice")[0]["tier"] == "pro"
    usage = _run(capsys, "usage", "--by", "account")
    assert (usage["group_by"], usage["groups"], usage["total"]["generations"]) == (
        "account",
        [],
        0,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("keys", "create", "--user", "a", "--name", "n", "--tier", "gold"), "no such tier"),
        (("keys", "limits", "not-an-id"), "not a key id"),
        (("keys", "limits", "00000000-0000-0000-0000-000000000000"), "not found"),
        (("usage", "--from", "yesterday"), "not an ISO time"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    database_url: str, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], says: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    assert says in str(exited.value.code)
