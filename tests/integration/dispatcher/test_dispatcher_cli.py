"""`genbus-dispatcher accounts ...` against a real database, as a process: bootstrap account
management before the HTTP server is up. Secrets come from the environment, never shown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from dispatcher_harness import Dispatcher
from sqlalchemy import text

from genbus.providers import CredentialCipher

pytestmark = pytest.mark.integration


def cli(database_url: str, keys: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genbus.dispatcher", "accounts", *args],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "GENBUS_CREDENTIALS_KEYS": keys,
            "GENBUS_LOG_FORMAT": "json",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_accounts_commands_manage_accounts_without_showing_secrets(
    dispatcher: Dispatcher,
) -> None:
    url = dispatcher.settings.database_url
    old_key, new_key = CredentialCipher.generate_key(), CredentialCipher.generate_key()
    first, second = f"sk-{uuid.uuid4().hex}", f"sk-{uuid.uuid4().hex}"
    results = []

    def run(*args: str, keys: str = old_key, **env: str) -> subprocess.CompletedProcess[str]:
        result = cli(url, keys, *args, **env)
        results.append(result)
        return result

    def steps() -> None:
        [added] = lines(
            run(
                "add", "--provider", "pixverse", "--label", "Boot Pix", "--max-concurrent", "2",
                "--credential", "api_key=BOOT_KEY", BOOT_KEY=first,
            )
        )  # fmt: skip
        assert (added["id"], added["credential_names"]) == ("boot-pix", ["api_key"])
        [updated] = lines(
            run(
                "update", "boot-pix", "--max-concurrent", "5", "--daily-cap", "10",
                "--credential", "api_key=NEW_KEY", NEW_KEY=second,
            )
        )  # fmt: skip
        assert (updated["max_concurrent"], updated["daily_cap"]) == (5, 10)
        [cleared] = lines(run("update", "boot-pix", "--clear", "daily_cap"))
        assert cleared["daily_cap"] is None
        [disabled] = lines(run("disable", "boot-pix", "--reason", "rotating"))
        assert (disabled["status"], disabled["status_reason"]) == ("disabled", "rotating")
        [enabled] = lines(run("enable", "boot-pix"))
        assert enabled["status"] == "active"
        [listed] = lines(run("list"))
        assert listed["id"] == "boot-pix"
        [report] = lines(run("rotate-keys", keys=f"{new_key},{old_key}"))
        assert report == {"rotated": 1, "unreadable": []}
        missing = run("enable", "nope")
        assert missing.returncode != 0
        assert "account_not_found" in missing.stderr
        empty = run("update", "boot-pix", "--credential", "api_key=UNSET_VAR_FOR_TEST")
        assert empty.returncode != 0

    await asyncio.to_thread(steps)

    for result in results:
        assert first not in result.stdout + result.stderr
        assert second not in result.stdout + result.stderr
    view = await dispatcher.account("boot-pix")
    assert view.credential_names == ["api_key"]
    async with dispatcher.engine.connect() as conn:
        token = await conn.scalar(
            text("SELECT credentials_ciphertext FROM dispatcher.provider_accounts")
        )
    assert CredentialCipher([new_key]).decrypt(token).require("api_key") == second
