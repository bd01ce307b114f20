"""The web console in a real browser (Debian's chromium driven by Playwright) against the whole
system: sign in, watch a generation appear and complete live, replay a dead letter and watch it
go, disable an account and see the dispatcher stop using it. Screenshots of every page are kept
under the pytest basetemp (`console-screenshots/`). Also: the operators' commands work with
only the connection facts `make run` writes, and the services log no error meanwhile."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from genbus.contracts import DEAD_LETTER_STREAM, REQUESTED, GenerationRequested
from genbus.contracts.permissions import PROVISIONER
from genbus.contracts.streams import dead_letter_subject
from genbus.devstack.first_screen import RunFacts, write_connection_facts
from genbus.devstack.system import GenbusSystem
from genbus.runtime.deadletter import CONSUMER_HEADER, REASON_HEADER, SUBJECT_HEADER
from genbus.runtime.nats_client import connect_nats
from genbus.runtime.publisher import encode_event
from tests.e2e.conftest import wait_terminal

pytestmark = pytest.mark.e2e

LIVE_S = 20_000  # ms Playwright waits for a live update (SSE pushes every second)
SECRET_PARAM = "sk-console-must-not-show"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "console-screenshots"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def page(system: GenbusSystem) -> Iterator[Page]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make browser` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(LIVE_S)
        tab.on("dialog", lambda dialog: dialog.accept())
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def _console(system: GenbusSystem) -> str:
    return f"{system.admin_url}/console"


def _create(api: httpx.Client, **extra: object) -> str:
    response = api.post(
        "/api/v1/generations",
        json={
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": "console"},
            **extra,
        },
    )
    assert response.status_code in (200, 201, 202), response.text
    generation_id: str = response.json()["id"]
    return generation_id


def test_sign_in_and_see_the_overview(
    system: GenbusSystem, page: Page, api: httpx.Client, shots: Path
) -> None:
    page.goto(f"{_console(system)}/")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.fill("input[name=token]", "wrong-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not the admin token")
    page.fill("input[name=token]", system.config.admin_token)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/$"))
    wait_terminal(api, f"/api/v1/generations/{_create(api)}")
    # The chart's total moves live once the completed job is counted.
    expect(page.locator('tr[data-provider="sim"] .total')).to_have_text(re.compile(r"^[1-9]\d* ok"))
    expect(page.locator("#providers")).to_contain_text("pixverse")
    page.screenshot(path=str(shots / "overview.png"), full_page=True)


def test_a_generation_appears_and_completes_live(
    system: GenbusSystem, page: Page, api: httpx.Client, sim: httpx.Client, shots: Path
) -> None:
    # Jobs of 4 s at the provider: the row is seen before it ends, whatever the ingest delay.
    sim.put("/_sim/config", json={"duration_s": 4.0, "duration_jitter_s": 0}).raise_for_status()
    try:
        page.goto(f"{_console(system)}/generations?provider=sim")
        page.evaluate("window.__notReloaded = true")
        generation_id = _create(api)
        row = page.locator(f'tr[data-generation="{generation_id}"]')
        expect(row.locator(".status")).to_have_text(re.compile(r"^(queued|claimed|submitted)$"))
        expect(row.locator(".status")).to_have_text("completed")
        assert page.evaluate("window.__notReloaded") is True  # pushed over SSE, not reloaded
    finally:
        sim.put("/_sim/config", json={"duration_s": 0.2, "duration_jitter_s": 0})
    row.locator("a").click()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("submitted")
    expect(timeline).to_contain_text("completed")
    expect(page.locator("#generation-status")).to_have_text("completed")
    page.screenshot(path=str(shots / "generation-timeline.png"), full_page=True)


async def _dead_letter_a_duplicate(nats_url: str, generation_id: str) -> int:
    """A copy of a generation's request in the dead-letter stream, as an outage leaves one:
    replayed, the dispatcher sees a generation it knows and acks it (idempotent)."""
    event = GenerationRequested(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        generation_id=uuid.UUID(generation_id),
        user_id="local",
        provider_id="sim",
        operation_type="text_to_video",
        params={"prompt": "console", "api_key": SECRET_PARAM},
        deadline_at=datetime.now(UTC) + timedelta(minutes=10),
        reproducible_hash="0" * 64,
    )
    message = encode_event(REQUESTED, event)
    nc = await connect_nats(nats_url)
    try:
        ack = await nc.jetstream().publish(
            dead_letter_subject("dispatcher-requested", message.subject),
            message.payload,
            stream=DEAD_LETTER_STREAM.name,
            headers={
                CONSUMER_HEADER: "dispatcher-requested",
                SUBJECT_HEADER: message.subject,
                REASON_HEADER: "database unavailable (test)",
                "Genbus-Deliveries": "5",
                "Genbus-Dead-Lettered-At": datetime.now(UTC).isoformat(),
            },
        )
    finally:
        await nc.close()
    return int(ack.seq)


def test_replay_a_dead_letter_and_watch_it_disappear(
    system: GenbusSystem, page: Page, api: httpx.Client, shots: Path
) -> None:
    generation_id = _create(api)
    wait_terminal(api, f"/api/v1/generations/{generation_id}")
    # Playwright's sync API runs an event loop in this thread: NATS goes in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        sequence = pool.submit(
            asyncio.run, _dead_letter_a_duplicate(system.nats_url_for(PROVISIONER), generation_id)
        ).result()
    page.goto(f"{_console(system)}/deadletters")
    row = page.locator(f'tr[data-sequence="{sequence}"]')
    expect(row).to_contain_text("database unavailable (test)")
    row.locator("summary").click()
    expect(row.locator("pre")).to_contain_text("[redacted]")
    assert SECRET_PARAM not in page.content()
    page.screenshot(path=str(shots / "dead-letters.png"), full_page=True)
    row.get_by_role("button", name="replay").click()  # confirmed by the dialog handler
    expect(page.locator(".flash")).to_contain_text(f"replayed {sequence}")
    expect(page.locator(f'tr[data-sequence="{sequence}"]')).to_have_count(0)
    # Handled, not dead-lettered again; and the replay is in the audit log.
    page.goto(f"{_console(system)}/")
    expect(page.locator("#dead-letter-count")).to_have_text("0")
    audit = httpx.get(
        f"{system.admin_url}/admin/audit",
        params={"target": f"deadletter:{sequence}"},
        headers={"Authorization": f"Bearer {system.config.admin_token}"},
    ).json()["entries"]
    assert [(e["action"], e["actor"].endswith("(console)")) for e in audit] == [
        ("dead_letter.replay", True)
    ]


def test_disable_an_account_and_the_dispatcher_stops_using_it(
    system: GenbusSystem, page: Page, api: httpx.Client, shots: Path
) -> None:
    page.goto(f"{_console(system)}/accounts")
    row = page.locator('tr[data-account="sim-1"]')
    row.locator("input[name=reason]").fill("console test")
    row.get_by_role("button", name="disable").click()
    expect(row.locator(".status")).to_have_text("disabled")
    expect(row).to_contain_text("console test")
    page.screenshot(path=str(shots / "accounts.png"), full_page=True)
    try:
        created = [_create(api) for _ in range(6)]
        for generation_id in created:
            assert wait_terminal(api, f"/api/v1/generations/{generation_id}")["status"] == (
                "completed"
            )
        page.goto(f"{_console(system)}/generations?provider=sim")
        for generation_id in created:
            cells = page.locator(f'tr[data-generation="{generation_id}"] td')
            expect(cells.nth(5)).to_have_text("sim-2")
    finally:
        page.goto(f"{_console(system)}/accounts")
        page.locator('tr[data-account="sim-1"]').get_by_role("button", name="enable").click()
        expect(page.locator('tr[data-account="sim-1"] .status')).to_have_text("active")


def test_the_commands_need_nothing_but_the_connection_facts(
    system: GenbusSystem, tmp_path: Path
) -> None:
    facts = RunFacts(
        nats_url=system.config.nats_url,
        database_url=system.config.database_url,
        api_url=system.api_url,
        admin_url=system.admin_url,
        sim_url=system.sim_url,
        admin_token=system.config.admin_token,
        credentials_key=system.config.credentials_key,
        logs={},
        **_nats_facts(system),
    )
    write_connection_facts(tmp_path, facts)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["GENBUS_LOCAL_DIR"] = str(tmp_path)
    outputs = {}
    for argv in (("status",), ("accounts", "list"), ("deadletters", "list")):
        result = subprocess.run(
            [sys.executable, "-m", "genbus.cli", "--json", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        outputs[argv[0]] = json.loads(result.stdout)
    assert {a["id"] for a in outputs["accounts"]} >= {"sim-1", "sim-2"}
    assert "dead_letters" in outputs["status"]
    keys = subprocess.run(
        [sys.executable, "-m", "genbus.dispatcher", "accounts", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert keys.returncode == 0, keys.stderr
    assert "sim-1" in keys.stdout


def test_no_service_logged_an_error_meanwhile(system: GenbusSystem) -> None:
    for name, process in system.processes.items():
        assert process.log_path is not None
        for line in process.log_path.read_text().splitlines():
            assert "Traceback" not in line, f"{name}: {line}"
            assert '"level": "error"' not in line, f"{name}: {line}"


def _nats_facts(system: GenbusSystem) -> dict[str, str]:
    """The command-line tools' NATS user (the provisioner) and the server's CA, as `make run`
    writes them."""
    security = system.config.nats_security
    if security is None:
        return {}
    return {
        "nats_user": PROVISIONER,
        "nats_password": security.password(PROVISIONER),
        "nats_tls_ca": str(security.tls.ca_file),
    }
