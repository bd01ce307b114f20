"""genbus.provider_sim: a fake asynchronous video provider over HTTP, for local runs and tests."""

from genbus.provider_sim.app import create_app
from genbus.provider_sim.config import SimConfig
from genbus.provider_sim.state import SimState

__all__ = ["SimConfig", "SimState", "create_app"]
