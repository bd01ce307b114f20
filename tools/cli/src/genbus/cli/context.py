"""What a command runs with: the admin client, the environment, where to write, and how."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from genbus.cli.client import AdminClient


@dataclass
class Context:
    env: Mapping[str, str]
    out: TextIO
    as_json: bool
    connect: Callable[[], AdminClient]
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _client: AdminClient | None = field(default=None, init=False)

    @property
    def client(self) -> AdminClient:
        """The admin client, made on first use (so `--help` needs no token)."""
        if self._client is None:
            self._client = self.connect()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
