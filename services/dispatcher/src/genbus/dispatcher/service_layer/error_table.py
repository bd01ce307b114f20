"""README's tables of provider errors and of in-doubt submissions, rendered from the code so
the two cannot drift."""

from __future__ import annotations

from genbus.dispatcher.service_layer.in_doubt import in_doubt_policy
from genbus.dispatcher.service_layer.refusals import reaction_of
from genbus.providers import BEHAVIOURS, ProviderError, ProviderUnavailable, SubmitGuarantees
from genbus.providers.registry import ADAPTER_FACTORIES

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


def in_doubt_table() -> str:
    """One Markdown row per provider: its submit guarantees and what an unanswered submit does."""
    lines = [
        "| provider | idempotent submit | found by reference "
        "| a submission whose answer is lost is |",
        "|---|---|---|---|",
    ]
    for provider_id, factory in sorted(ADAPTER_FACTORIES.items()):
        # Adapter classes carry their guarantees as a class attribute: no client is built.
        guarantees: SubmitGuarantees = getattr(factory, "submit_guarantees")  # noqa: B009
        idempotent = "yes" if guarantees.idempotent else "no"
        findable = "yes" if guarantees.findable_by_reference else "no"
        lines.append(
            f"| `{provider_id}` | {idempotent} | {findable} | {in_doubt_policy(guarantees)} |"
        )
    return "\n".join(lines) + "\n"
