"""Rules for free-form JSON the api stores (metadata, provider options, params as sent).

Postgres JSONB refuses NUL characters, unpaired surrogates and non-finite numbers; a request
carrying them must be refused as invalid, never fail later as a server error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from genbus.runtime.problems import FieldError

_MAX_REPORTED = 20


def json_problems(value: Any, path: str, *, max_depth: int) -> list[FieldError]:
    """Everything in `value` (walked iteratively) that cannot be stored as JSONB as it is."""
    problems: list[FieldError] = []
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack and len(problems) < _MAX_REPORTED:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = string_problem(item)
            if problem:
                problems.append(FieldError(where, "invalid_character", problem))
        elif isinstance(item, float):
            if not math.isfinite(item):
                problems.append(FieldError(where, "invalid_number", "must be a finite number"))
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                problems.append(
                    FieldError(where, "too_deep", f"nests deeper than {max_depth} levels")
                )
                continue
            if isinstance(item, list):
                stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
                continue
            for key, child in item.items():
                key_problem = string_problem(key) if isinstance(key, str) else "is not a string"
                if key_problem:
                    problems.append(FieldError(where, "invalid_key", f"a key {key_problem}"))
                    continue
                stack.append((child, f"{where}.{key}", depth + 1))
        elif not (item is None or isinstance(item, bool | int)):
            problems.append(FieldError(where, "invalid_type", "is not a JSON value"))
    return problems


def string_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def encoded_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (call only after `json_problems` found nothing)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
