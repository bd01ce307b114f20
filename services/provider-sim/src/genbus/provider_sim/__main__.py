"""`genbus-provider-sim`: run the simulator with uvicorn (`SIM_*` environment, or flags)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from genbus.provider_sim.app import create_app
from genbus.provider_sim.config import ServerSettings, SimConfig


def main(argv: Sequence[str] | None = None) -> None:
    server = ServerSettings()
    parser = argparse.ArgumentParser(prog="genbus-provider-sim", description=__doc__)
    parser.add_argument("--host", default=server.host, help="default: $SIM_HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, default=server.port, help="default: $SIM_PORT or 9100")
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=server.access_log,
        help="log one line per request (default: $SIM_ACCESS_LOG or off)",
    )
    parser.add_argument(
        "--log-level", default=server.log_level, help="default: $SIM_LOG_LEVEL or info"
    )
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(SimConfig()),
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
