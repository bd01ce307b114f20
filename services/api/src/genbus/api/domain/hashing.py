"""Canonical JSON and the reproducible hash: equal requests, up to seeds, hash equally."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

#: Keys that make a run differ without making the request differ.
IGNORED_KEYS = frozenset({"seed"})


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is; NaN and infinities are refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def without_ignored_keys(value: Any) -> Any:
    """`value` with every `seed` key removed, at any depth."""
    if isinstance(value, Mapping):
        return {k: without_ignored_keys(v) for k, v in value.items() if k not in IGNORED_KEYS}
    if isinstance(value, list | tuple):
        return [without_ignored_keys(v) for v in value]
    return value


def reproducible_hash(
    operation_type: str,
    provider_id: str,
    canonical_params: Mapping[str, Any],
    canonical_inputs: Sequence[Mapping[str, Any]],
) -> str:
    """SHA-256 hex of the canonical request. Operation and provider are part of it: the same
    prompt as a video or as an image, or on another provider, is another result."""
    document = {
        "operation_type": operation_type,
        "provider_id": provider_id,
        "params": canonical_params,
        # A stored input's presigned URL differs every time: its stable `ref` stands for it.
        "inputs": [
            {k: v for k, v in i.items() if k != "url"} if "ref" in i else i
            for i in canonical_inputs
        ],
    }
    return hashlib.sha256(canonical_json(without_ignored_keys(document)).encode()).hexdigest()
