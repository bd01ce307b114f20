"""`genbus-api`: migrate the `api` schema, then serve HTTP and consume events until SIGTERM."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.runtime.logging import configure_logging
from genbus.runtime.migrations import upgrade_to_head

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    settings = ApiSettings()
    configure_logging("api", settings.log_format, settings.log_level)
    # Before the event loop: Alembic runs its own (see genbus.runtime.migrations).
    upgrade_to_head(MIGRATIONS, settings.database_url, "api")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


if __name__ == "__main__":
    main()
