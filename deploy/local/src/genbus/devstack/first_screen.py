"""What `make run` leaves for people and tools: the connection facts file and the first screen.

The facts (`.local/connection.json`, mode 0600) let `uv run genbus ...` and the service commands
work with no environment set. The screen is what a person needs and nothing that reads as a
failure: URLs, the curl lines, one line per service. Each service's own output goes to its log
file (`.local/run/logs/<name>.log`), library chatter included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from genbus.runtime.connection import FILE_NAME, write_facts

CURL_BODY = (
    '{"operation_type": "text_to_video", "provider_id": "pixverse", '
    '"params": {"prompt": "test video", "quality": "720p"}}'
)


@dataclass(frozen=True)
class RunFacts:
    """Where everything of a `make run` is; every URL as a person would type it."""

    nats_url: str
    database_url: str
    api_url: str
    admin_url: str
    sim_url: str
    admin_token: str
    credentials_key: str
    #: Service name -> its log file.
    logs: Mapping[str, Path]
    #: The NATS user the command-line tools connect as (the provisioner: dead-letter replays
    #: and consumer states need it), its password and the CA of the server's certificate.
    #: The webhooks management API, when the webhooks service runs.
    webhooks_url: str | None = None
    nats_user: str | None = None
    nats_password: str | None = None
    nats_tls_ca: str | None = None
    #: How to follow completion events as the read-only subscriber role (shown once).
    subscriber_lines: tuple[str, ...] = ()

    @property
    def console_url(self) -> str:
        return f"{self.admin_url}/console/"


def local_url(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


def write_connection_facts(base_dir: Path, facts: RunFacts) -> Path:
    """`<base_dir>/connection.json`: what the command-line tools read when no env is set.

    NATS connection options are the URL, the tools' user and password, and the CA file.
    """
    path = base_dir / FILE_NAME
    write_facts(
        path,
        {
            "nats_url": facts.nats_url,
            "database_url": facts.database_url,
            "api_url": facts.api_url,
            "admin_url": facts.admin_url,
            "admin_token": facts.admin_token,
            "console_url": facts.console_url,
            "credentials_keys": facts.credentials_key,
            **{
                name: value
                for name, value in (
                    ("nats_user", facts.nats_user),
                    ("nats_password", facts.nats_password),
                    ("nats_tls_ca", facts.nats_tls_ca),
                )
                if value is not None
            },
        },
    )
    return path


def service_lines(facts: RunFacts, pids: Mapping[str, int | None]) -> list[str]:
    """One line per service started."""
    return [
        f"{name:<10} started (pid {pids.get(name)}), log {facts.logs[name]}" for name in facts.logs
    ]


def first_screen(facts: RunFacts, api_key: str, facts_file: Path) -> list[str]:
    """The lines `make run` shows once everything is ready (service lines come before). Lines
    to copy (commands) start with two spaces."""
    api = facts.api_url
    token_file = facts_file.parent / "admin.token"
    return [
        f"NATS {facts.nats_url}   Postgres {facts.database_url}",
        f"API {api}  (docs {api}/docs)   sim provider {facts.sim_url}/_sim/stats",
        f"web console {facts.console_url}  (sign in with the token in {token_file})",
        *(
            [
                f"webhooks {facts.webhooks_url}/api/v1/webhooks/endpoints"
                f"  (docs {facts.webhooks_url}/docs)"
            ]
            if facts.webhooks_url
            else []
        ),
        *facts.subscriber_lines,
        "",
        "try:",
        f"  curl -X POST {api}/api/v1/jobs -H \"Content-Type: application/json\" -d '{CURL_BODY}'",
        f"  curl {api}/api/v1/jobs/<id>",
        "with an API key (created now, stored hashed; shown only here):",
        f'  curl -X POST {api}/api/v1/generations -H "Authorization: Bearer {api_key}" '
        f"-H \"Content-Type: application/json\" -d '{CURL_BODY}'",
        "",
        f"operator commands (connection facts in {facts_file}):",
        "  uv run genbus status    uv run genbus accounts list    uv run genbus deadletters list",
        "",
        "ready; Ctrl-C stops everything",
    ]
