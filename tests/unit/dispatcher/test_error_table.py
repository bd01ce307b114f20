"""README's table of provider errors is the one the code renders: docs and code cannot drift."""

from __future__ import annotations

from pathlib import Path

from genbus.dispatcher.service_layer.error_table import error_table, in_doubt_table
from genbus.providers import BEHAVIOURS, Behaviour
from genbus.providers.registry import ADAPTER_FACTORIES

ONE_EACH = {Behaviour.BACK_OFF, Behaviour.DISABLE_ACCOUNT, Behaviour.FAIL}
README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_holds_the_rendered_error_table() -> None:
    table = error_table()
    assert table in README.read_text(), (
        "README's error table is out of date; replace it with the output of "
        "`genbus-dispatcher error-table`:\n" + table
    )


def test_the_table_has_one_row_per_error_class_with_its_behaviour() -> None:
    rows = [line for line in error_table().splitlines()[2:]]
    assert len(rows) == len(BEHAVIOURS)
    for row, (error_class, behaviour) in zip(rows, BEHAVIOURS.items(), strict=True):
        assert f"{error_class.__qualname__}`" in row
        assert f"| `{behaviour.value}` |" in row


def test_every_behaviour_has_its_own_reaction() -> None:
    reactions = {}
    for line in error_table().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        reactions.setdefault(cells[2], set()).add(cells[3])
    assert set(reactions) == {f"`{b.value}`" for b in Behaviour}
    assert len(reactions["`rotate`"]) == 2  # concurrency limit: cooldown; quota: exhausted
    assert len(reactions["`retry`"]) == 2  # no answer at all: resolved first, never blindly
    assert all(len(texts) == 1 for name, texts in reactions.items() if name[1:-1] in ONE_EACH)


def test_readme_holds_the_rendered_in_doubt_table() -> None:
    table = in_doubt_table()
    assert table in README.read_text(), (
        "README's in-doubt table is out of date; replace it with the output of "
        "`genbus-dispatcher in-doubt-table`:\n" + table
    )


def test_a_provider_without_idempotency_or_lookup_is_never_resubmitted() -> None:
    rows = {line.split("|")[1].strip(): line for line in in_doubt_table().splitlines()[2:]}
    assert set(rows) == {f"`{provider}`" for provider in ADAPTER_FACTORIES}
    for provider, factory in ADAPTER_FACTORIES.items():
        guarantees = factory.submit_guarantees  # type: ignore[attr-defined]
        never = "never submitted again" in rows[f"`{provider}`"]
        assert never == (not guarantees.idempotent and not guarantees.findable_by_reference)
