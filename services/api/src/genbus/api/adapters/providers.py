"""The provider catalog the api validates requests against: the providers lib's table, and
each adapter's own check of its `provider_options`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from genbus.providers.capabilities import known_provider_ids, provider_supports
from genbus.providers.registry import ADAPTER_FACTORIES
from genbus.runtime.logging import get_logger
from genbus.runtime.problems import FieldError, field_errors_from

log = get_logger(__name__)

#: The optional hook an adapter class may define to check the options only it understands:
#: `validate_provider_options(operation_type: str, options: Mapping[str, Any]) -> None`, raising
#: `ValueError` (a pydantic `ValidationError` names each field) when they are wrong.
VALIDATION_HOOK = "validate_provider_options"

OptionsHook = Callable[[str, Mapping[str, Any]], None]


class CapabilitiesCatalog:
    """`ProviderCatalog` backed by `genbus.providers.capabilities` and the adapter classes."""

    def __init__(self, hooks: Mapping[str, OptionsHook] | None = None) -> None:
        if hooks is None:
            hooks = {
                provider_id: hook
                for provider_id, factory in ADAPTER_FACTORIES.items()
                if callable(hook := getattr(factory, VALIDATION_HOOK, None))
            }
        self._hooks = dict(hooks)

    def is_known(self, provider_id: str) -> bool:
        return provider_id in known_provider_ids()

    def supports(self, provider_id: str, operation_type: str) -> bool:
        return provider_supports(provider_id, operation_type)

    def provider_options_problems(
        self, provider_id: str, operation_type: str, options: Mapping[str, Any]
    ) -> list[FieldError]:
        hook = self._hooks.get(provider_id)
        if hook is None:
            return []
        try:
            hook(operation_type, options)
        except ValidationError as exc:
            return [
                FieldError("" if e.field == "body" else e.field, e.code, e.message)
                for e in field_errors_from(exc)
            ]
        except ValueError as exc:
            return [FieldError("", "invalid", str(exc)[:500] or "invalid provider options")]
        except Exception as exc:
            # A bug in an adapter's check must not turn a request into a server error.
            log.error("provider options check failed", provider_id=provider_id, error=repr(exc))
            return [FieldError("", "invalid", "the provider could not check these options")]
        return []
