"""The reproducible hash: seeds and key order do not matter; everything else does."""

from __future__ import annotations

from typing import Any

import pytest

from genbus.api.domain.hashing import canonical_json, reproducible_hash

PARAMS: dict[str, Any] = {
    "prompt": "a cat",
    "duration": 5,
    "quality": "720p",
    "seed": 1,
    "provider_options": {"motion": 3, "seed": 9},
}
INPUTS = [{"role": "image", "url": "https://example.com/a.png"}]


def _hash(params: dict[str, Any], inputs: list[dict[str, Any]] = INPUTS, **kw: str) -> str:
    return reproducible_hash(
        kw.get("operation_type", "text_to_video"), kw.get("provider_id", "sim"), params, inputs
    )


def test_is_sha256_hex() -> None:
    h = _hash(PARAMS)
    assert len(h) == 64
    assert int(h, 16) >= 0


def test_ignores_every_seed_at_any_depth() -> None:
    other_seeds = {**PARAMS, "seed": 42, "provider_options": {"motion": 3, "seed": 7}}
    no_seeds = {k: v for k, v in PARAMS.items() if k != "seed"} | {
        "provider_options": {"motion": 3}
    }
    assert _hash(PARAMS) == _hash(other_seeds) == _hash(no_seeds)


def test_ignores_key_order() -> None:
    reordered = dict(reversed(list(PARAMS.items())))
    reordered["provider_options"] = {"seed": 9, "motion": 3}
    assert list(reordered) != list(PARAMS)
    assert _hash(PARAMS) == _hash(reordered)


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "a dog"},
        {"duration": 6},
        {"provider_options": {"motion": 4}},
    ],
)
def test_changes_with_params(change: dict[str, Any]) -> None:
    assert _hash(PARAMS) != _hash({**PARAMS, **change})


def test_changes_with_inputs_operation_and_provider() -> None:
    base = _hash(PARAMS)
    assert base != _hash(PARAMS, [{"role": "image", "url": "https://example.com/b.png"}])
    assert base != _hash(PARAMS, [])
    assert base != _hash(PARAMS, operation_type="text_to_image")
    assert base != _hash(PARAMS, provider_id="other")


def test_canonical_json_is_compact_sorted_and_refuses_nan() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})
