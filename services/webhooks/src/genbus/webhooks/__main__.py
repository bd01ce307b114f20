"""`python -m genbus.webhooks` / `genbus-webhooks [serve|migrate]`: serve migrates first."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from genbus.runtime.logging import configure_logging
from genbus.runtime.migrations import upgrade_to_head
from genbus.runtime.service import run_service
from genbus.webhooks.adapters.tables import SCHEMA
from genbus.webhooks.config import WebhooksSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(settings: WebhooksSettings) -> None:
    upgrade_to_head(MIGRATIONS, settings.database_url, SCHEMA)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="genbus-webhooks")
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "migrate"))
    args = parser.parse_args(argv)
    settings = WebhooksSettings()
    configure_logging("webhooks", settings.log_format, settings.log_level)
    # Before the event loop: Alembic runs its own (see genbus.runtime.migrations).
    migrate(settings)
    if args.command == "serve":
        from genbus.webhooks.bootstrap import serve

        run_service(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
