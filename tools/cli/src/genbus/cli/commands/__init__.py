"""The command groups of `genbus`: one module each, registered here.

A group module has `register(subparsers)`, which adds its parser and sets `run(client, args,
out) -> int` as the `run` default of each of its commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from genbus.cli.commands import accounts, audit, deadletters, status

COMMAND_GROUPS: Sequence[ModuleType] = (accounts, status, deadletters, audit)
