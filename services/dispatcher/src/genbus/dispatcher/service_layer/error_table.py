"""README's table of provider errors, rendered from the code so the two cannot drift."""

from __future__ import annotations

from genbus.dispatcher.service_layer.submission import reaction_of
from genbus.providers import BEHAVIOURS, ProviderError, ProviderUnavailable

_HEADER = (
    "| error class | code | behaviour | what the dispatcher does at submission |",
    "|---|---|---|---|",
)


def error_table() -> str:
    """One Markdown row per entry of `BEHAVIOURS`, in its order."""
    lines = list(_HEADER)
    for error_class, behaviour in BEHAVIOURS.items():
        if issubclass(error_class, ProviderError):
            name, code = error_class.__name__, f"`{error_class.code}`"
        else:
            # Raw network errors that escaped an adapter are reported as unavailability.
            module, name = error_class.__module__, error_class.__qualname__
            name = name if module == "builtins" else f"{module}.{name}"
            code = f"`{ProviderUnavailable.code}`"
        reaction = reaction_of(error_class, behaviour)
        lines.append(f"| `{name}` | {code} | `{behaviour.value}` | {reaction} |")
    return "\n".join(lines) + "\n"
