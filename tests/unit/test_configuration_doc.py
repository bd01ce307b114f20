"""docs/configuration.md is what the Settings classes say (regenerate: `make docs`)."""

from __future__ import annotations

from genbus.devstack.config_doc import DOC, render
from genbus.runtime.settings import RuntimeSettings


def test_the_configuration_reference_is_current() -> None:
    assert DOC.read_text() == render(), "stale: run `make docs`"


def test_every_shared_setting_is_listed_once() -> None:
    text = render()
    for name in ("GENBUS_NATS_USER", "GENBUS_NATS_TLS_CA", "GENBUS_HEALTH_HOST", "SIM_PORT"):
        assert text.count(f"`{name}`") == 1, name
    assert len(RuntimeSettings.model_fields) <= text.count("| `")
