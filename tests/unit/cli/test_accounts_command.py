"""`genbus accounts ...` against a fake admin API: what it sends, what it shows, and that a
credential comes only from the environment and never shows up in its output."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest

from genbus.cli.__main__ import run

SECRET = "sk-live-0123456789abcdef"
TOKEN = "admin-token-for-tests"

ACCOUNT = {
    "id": "pix-a",
    "provider_id": "pixverse",
    "label": "Pix A",
    "base_url": None,
    "status": "cooling_down",
    "status_reason": "rate_limited",
    "cooldown_until": "2026-01-01T00:00:10+00:00",
    "max_concurrent": 4,
    "busy": 3,
    "in_flight": {"claimed": 1, "submitted": 2},
    "priority": 1,
    "daily_cap": 100,
    "used_today": 42,
    "credits": None,
    "operations": None,
    "credential_names": ["api_key"],
}


class FakeAdmin:
    """Records requests; answers like the dispatcher's admin API."""

    def __init__(self, answer: Any = ACCOUNT, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"code": "unauthorized", "detail": "no"})
        return httpx.Response(self.status, json=self.answer)

    def body(self, index: int = -1) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.requests[index].content)
        return data


def genbus(fake: FakeAdmin, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(
        list(argv),
        env={"GENBUS_ADMIN_TOKEN": TOKEN, "GENBUS_ADMIN_URL": "http://admin.test", **(env or {})},
        out=out,
        err=err,
        transport=httpx.MockTransport(fake),
    )
    return code, out.getvalue(), err.getvalue()


def test_add_reads_credentials_from_the_named_environment_variables() -> None:
    fake = FakeAdmin(status=201)
    code, out, err = genbus(
        fake,
        "accounts", "add", "--provider", "pixverse", "--label", "Pix A",
        "--max-concurrent", "4", "--daily-cap", "100", "--operations", "text_to_video",
        "--credential", "api_key=PIX_KEY",
        env={"PIX_KEY": SECRET},
    )  # fmt: skip
    assert (code, err) == (0, "")
    [request] = fake.requests
    assert (request.method, request.url.path) == ("POST", "/admin/accounts")
    assert fake.body() == {
        "provider_id": "pixverse",
        "label": "Pix A",
        "max_concurrent": 4,
        "daily_cap": 100,
        "operations": ["text_to_video"],
        "credentials": {"api_key": SECRET},
    }
    assert SECRET not in out
    assert "api_key" in out


def test_a_missing_credential_variable_is_refused_before_any_request() -> None:
    fake = FakeAdmin()
    code, _, err = genbus(
        fake, "accounts", "add", "--provider", "pixverse", "--label", "x",
        "--max-concurrent", "1", "--credential", "api_key=NOT_SET",
    )  # fmt: skip
    assert code == 1
    assert "NOT_SET" in err
    assert fake.requests == []


def test_a_credential_value_on_the_command_line_is_not_a_value() -> None:
    # `--credential api_key=<secret>` names an environment variable, so a pasted secret is
    # looked up as a variable name (and not found), never sent.
    fake = FakeAdmin()
    code, _, err = genbus(fake, "accounts", "update", "pix-a", "--credential", f"api_key={SECRET}")
    assert code == 1
    assert fake.requests == []
    assert "is empty" in err


def test_list_shows_a_table_without_credentials() -> None:
    listing = {"accounts": [ACCOUNT, {**ACCOUNT, "id": "pix-b", "credentials": SECRET}]}
    code, out, _ = genbus(FakeAdmin(listing), "accounts", "list")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split()[:5] == ["ID", "PROVIDER", "LABEL", "STATUS", "BUSY"]
    assert first.split()[:3] == ["pix-a", "pixverse", "Pix"]
    assert "cooling_down" in first
    assert "3/4" in first
    assert "42/100" in first
    assert second.startswith("pix-b")
    assert SECRET not in out


def test_list_json_never_passes_a_credential_through() -> None:
    listing = {"accounts": [{**ACCOUNT, "credentials": {"api_key": SECRET}}]}
    code, out, _ = genbus(FakeAdmin(listing), "--json", "accounts", "list")
    assert code == 0
    [account] = json.loads(out)
    assert account["credential_names"] == ["api_key"]
    assert "credentials" not in account
    assert SECRET not in out


def test_update_sends_only_the_given_fields_and_clears() -> None:
    fake = FakeAdmin()
    code, _, _ = genbus(
        fake, "accounts", "update", "pix/a", "--max-concurrent", "6", "--clear", "daily_cap",
    )  # fmt: skip
    assert code == 0
    assert fake.requests[0].method == "PATCH"
    assert fake.requests[0].url.raw_path == b"/admin/accounts/pix%2Fa"
    assert fake.body() == {"max_concurrent": 6, "daily_cap": None}


def test_disable_and_enable() -> None:
    fake = FakeAdmin()
    assert genbus(fake, "accounts", "disable", "pix-a", "--reason", "leaked")[0] == 0
    assert genbus(fake, "accounts", "enable", "pix-a")[0] == 0
    assert [r.url.path for r in fake.requests] == [
        "/admin/accounts/pix-a/disable",
        "/admin/accounts/pix-a/enable",
    ]
    assert json.loads(fake.requests[0].content) == {"reason": "leaked"}


def test_refusals_are_reported_with_their_code() -> None:
    problem = {"code": "account_not_found", "detail": "no account 'x'"}
    code, out, err = genbus(FakeAdmin(problem, status=404), "accounts", "enable", "x")
    assert (code, out) == (1, "")
    assert "account_not_found" in err


def test_without_a_token_nothing_is_sent() -> None:
    fake = FakeAdmin()
    out, err = io.StringIO(), io.StringIO()
    code = run(["accounts", "list"], env={}, out=out, err=err, transport=httpx.MockTransport(fake))
    assert code == 1
    assert "GENBUS_ADMIN_TOKEN" in err.getvalue()
    assert fake.requests == []


def test_unreachable_admin_api() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    out, err = io.StringIO(), io.StringIO()
    code = run(
        ["accounts", "list"],
        env={"GENBUS_ADMIN_TOKEN": TOKEN},
        out=out,
        err=err,
        transport=httpx.MockTransport(refuse),
    )
    assert code == 1
    assert "unreachable" in err.getvalue()
    assert TOKEN not in err.getvalue()


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        run(["accounts", "add", "--label", "x"], env={}, out=io.StringIO(), err=io.StringIO())
    assert exc.value.code == 2
