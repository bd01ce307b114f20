"""The API as clients use it (sync mode, the Python client), on one running system: this
package-scoped `system` replaces the per-module one of tests/e2e/conftest.py, saving a start-up
per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import GenbusSystem
from tests.e2e.conftest import running_system


@pytest.fixture(scope="package")
def system(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[GenbusSystem]:
    sim_env = {"SIM_DURATION_S": "0.2", "SIM_DURATION_JITTER_S": "0"}
    with running_system(tmp_path_factory.mktemp("clients"), postgres, sim_env) as genbus:
        yield genbus
