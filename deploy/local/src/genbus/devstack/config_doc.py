"""`docs/configuration.md` from every service's Settings: `python -m genbus.devstack.config_doc`.

Each variable is listed with its type, default and the `#:` comment (or `description`) above
its field; `--write` rewrites the file, `--check` exits 1 when it is stale (tests/unit checks it).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic_core
from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from genbus.api.asset_config import AssetSettings, UploadSettings
from genbus.api.config import ApiSettings
from genbus.api.entrypoints.archiver import ArchiveSettings
from genbus.dispatcher.config import DispatcherSettings
from genbus.poller.config import PollerSettings
from genbus.provider_sim.config import ServerSettings, SimConfig
from genbus.runtime.settings import RuntimeSettings
from genbus.storage.settings import StorageSettings
from genbus.webhooks.config import WebhooksSettings

DOC = Path(__file__).resolve().parents[5] / "docs" / "configuration.md"

#: (title, settings class, what it is): shared fields are listed once, under the runtime.
SECTIONS: tuple[tuple[str, type[BaseSettings], str], ...] = (
    (
        "Every service",
        RuntimeSettings,
        "`genbus.runtime.settings.RuntimeSettings`: the api, dispatcher, poller and webhooks "
        "(and the provisioning step, `python -m genbus.runtime.provision`) read these.",
    ),
    ("api", ApiSettings, "`genbus.api.config.ApiSettings`"),
    ("dispatcher", DispatcherSettings, "`genbus.dispatcher.config.DispatcherSettings`"),
    ("poller", PollerSettings, "`genbus.poller.config.PollerSettings`"),
    ("webhooks", WebhooksSettings, "`genbus.webhooks.config.WebhooksSettings`"),
    (
        "object storage",
        StorageSettings,
        "`genbus.storage.settings.StorageSettings`: the S3 endpoint the api archives outputs to.",
    ),
    (
        "api: archiving outputs",
        ArchiveSettings,
        "`genbus.api.entrypoints.archiver.ArchiveSettings`: the archiver in the api's consumers.",
    ),
    (
        "api: uploads",
        UploadSettings,
        "`genbus.api.asset_config.UploadSettings`: `POST /api/v1/uploads`.",
    ),
    (
        "api: stored assets",
        AssetSettings,
        "`genbus.api.asset_config.AssetSettings`: retention, orphan sweep, inputs' URLs.",
    ),
    ("provider-sim (server)", ServerSettings, "`genbus.provider_sim.config.ServerSettings`"),
    (
        "provider-sim (behaviour)",
        SimConfig,
        "`genbus.provider_sim.config.SimConfig`; also changeable at run time (`PUT /_sim/config`).",
    ),
)


@dataclass(frozen=True)
class Variable:
    names: tuple[str, ...]
    type: str
    default: str
    description: str


def env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    if isinstance(alias, str):
        return (alias,)
    prefix = str(cls.model_config.get("env_prefix", ""))
    return (f"{prefix}{name}".upper(),)


def comments(cls: type[Any]) -> dict[str, str]:
    """The `#:` comment lines right above each field of `cls` and its bases."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in source.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):  # `#:` field docs, or a plain comment above a field
                pending.append(stripped.lstrip("#:").strip())
                continue
            match = re.match(r"^    (\w+)\s*:", line)
            if match and pending:
                found[match.group(1)] = " ".join(pending)
            if stripped:
                pending = []
    return found


def _type(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("doc_type"), str):
        return str(extra["doc_type"])
    text = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return re.sub(r"pydantic\.types\.|Annotated\[(\w+), .*\]", r"\1", text).replace(
        "| None", "(optional)"
    )


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        return "(secret, empty)" if not default.get_secret_value() else "(secret)"
    if default is None or default == "":
        return "unset"
    if isinstance(default, BaseModel) or (
        isinstance(default, dict) and any(isinstance(v, BaseModel) for v in default.values())
    ):  # structured settings (given as JSON): shown as JSON
        return f"`{pydantic_core.to_json(default, exclude_none=True).decode()}`"
    return f"`{default}`"


def variables(cls: type[BaseSettings], skip: set[str]) -> list[Variable]:
    notes = comments(cls)
    rows = []
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        description = field.description or notes.get(name, "")
        rows.append(
            Variable(env_names(cls, name, field), _type(field), _default(field), description)
        )
    return rows


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting each process reads from its environment, generated from the Settings",
        "classes (`python -m genbus.devstack.config_doc --write`, or `make docs`; a test keeps",
        "this file equal to them). Where several names are listed, any of them works.",
        "",
    ]
    shared = set(RuntimeSettings.model_fields)
    for title, cls, what in SECTIONS:
        skip = shared if cls is not RuntimeSettings and issubclass(cls, RuntimeSettings) else set()
        lines += [
            f"## {title}",
            "",
            what,
            "",
            "| variable | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for var in variables(cls, skip):
            names = ", ".join(f"`{n}`" for n in var.names)
            meaning = var.description.replace("|", "\\|")
            lines.append(f"| {names} | {var.type.replace('|', 'or')} | {var.default} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genbus.devstack.config_doc")
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOC}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC.write_text(text)
        return 0
    if args.check:
        return 0 if DOC.is_file() and DOC.read_text() == text else 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
