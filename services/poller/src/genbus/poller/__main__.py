"""`python -m genbus.poller` / `genbus-poller`."""

from genbus.poller.bootstrap import serve
from genbus.poller.config import PollerSettings
from genbus.runtime.logging import configure_logging
from genbus.runtime.service import run_service


def main() -> None:
    settings = PollerSettings()
    configure_logging("poller", settings.log_format, settings.log_level)
    run_service(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
