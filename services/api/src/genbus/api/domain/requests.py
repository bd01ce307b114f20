"""Validating a generation request and bringing it to canonical form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from genbus.api.domain.errors import (
    InvalidRequest,
    UnsupportedOperation,
    UnsupportedProvider,
)
from genbus.api.domain.json_values import encoded_size, json_problems, string_problem
from genbus.api.domain.model import Generation, JsonObject
from genbus.api.domain.params import (
    MAX_JSON_DEPTH,
    REQUIRED_INPUT_ROLE,
    OperationType,
    validate_params,
)
from genbus.api.domain.status import GenerationStatus
from genbus.runtime.problems import FieldError

MAX_METADATA_BYTES = 4 * 1024
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 10, 5


class ProviderCatalog(Protocol):
    """Which providers exist and what each can do."""

    def is_known(self, provider_id: str) -> bool: ...

    def supports(self, provider_id: str, operation_type: str) -> bool: ...

    def provider_options_problems(
        self, provider_id: str, operation_type: str, options: Mapping[str, Any]
    ) -> list[FieldError]:
        """What the provider's adapter finds wrong with `params.provider_options` (empty: ok).

        Fields are named relative to `provider_options` (`""` for the object itself).
        """
        ...


@dataclass(frozen=True)
class RequestLimits:
    default_deadline: timedelta
    #: No deadline (nor schedule) further ahead than this: events outlive it in the stream.
    max_deadline: timedelta = timedelta(days=7)
    #: How long an idempotency key is remembered (at least 24 hours).
    idempotency_ttl: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class InputSpec:
    """An input as the user named it: exactly one of `url` / `generation_id` / `upload_id`."""

    role: str
    url: str | None = None
    generation_id: UUID | None = None
    upload_id: UUID | None = None

    def as_json(self) -> JsonObject:
        if self.generation_id is not None:
            return {"role": self.role, "generation_id": str(self.generation_id)}
        if self.upload_id is not None:
            return {"role": self.role, "upload_id": str(self.upload_id)}
        return {"role": self.role, "url": self.url}


def stored_asset_key(generation_id: UUID, n: int = 0) -> str:
    """Where the archiver stores a generation's `n`-th output."""
    return f"generations/{generation_id}/{n}"


def stored_input_keys(
    inputs: Sequence[InputSpec],
    sources: Mapping[UUID, Generation],
    upload_keys: Mapping[UUID, str] | None,
) -> list[str]:
    """The object keys of the stored copies `canonical_inputs` will hand to the provider."""
    keys: list[str] = []
    for item in inputs:
        source = sources.get(item.generation_id) if item.generation_id else None
        if source is not None and source.asset is not None and source.asset.stored:
            keys.append(stored_asset_key(source.id))
        if item.upload_id is not None and upload_keys and item.upload_id in upload_keys:
            keys.append(upload_keys[item.upload_id])
    return keys


@dataclass(frozen=True)
class GenerationDraft:
    """What the user asked for, shape-checked by the edge but not yet validated."""

    operation_type: str
    provider_id: str
    params: Mapping[str, Any]
    inputs: Sequence[InputSpec] = ()
    priority: int = DEFAULT_PRIORITY
    scheduled_at: datetime | None = None
    deadline: datetime | None = None
    name: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    prompt_version_id: str | None = None


@dataclass(frozen=True)
class ValidRequest:
    draft: GenerationDraft
    operation_type: OperationType
    canonical_params: JsonObject
    #: The inputs as sent plus URL params moved into inputs (e.g. `params.image_url`).
    inputs: tuple[InputSpec, ...]
    scheduled_at: datetime | None
    deadline_at: datetime


def validate_request(
    draft: GenerationDraft, catalog: ProviderCatalog, limits: RequestLimits, now: datetime
) -> ValidRequest:
    """Every rule a request must meet; raises `InvalidRequest` (or a subclass) naming fields."""
    operation = _supported_operation(draft, catalog)
    errors: list[FieldError] = []
    params = _checked_params(draft, operation, catalog, errors)
    inputs = tuple(draft.inputs) if params is None else params.inputs
    required_role = REQUIRED_INPUT_ROLE.get(operation)
    if params is not None and required_role and not any(i.role == required_role for i in inputs):
        hint = " (or params.image_url)" if required_role == "image" else ""
        errors.append(
            FieldError(
                "inputs",
                "required_input",
                f"{operation} needs an input with role {required_role!r}{hint}",
            )
        )
    if not MIN_PRIORITY <= draft.priority <= MAX_PRIORITY:
        errors.append(
            FieldError("priority", "out_of_range", f"must be {MIN_PRIORITY}..{MAX_PRIORITY}")
        )
    if draft.name is not None and (problem := string_problem(draft.name)):
        errors.append(FieldError("name", "invalid_character", problem))
    errors.extend(_metadata_problems(draft.metadata))
    scheduled_at, deadline_at = _schedule(draft, limits, now, errors)
    if errors:
        raise InvalidRequest(errors)
    return ValidRequest(
        draft=draft,
        operation_type=operation,
        canonical_params=params.canonical if params is not None else {},
        inputs=inputs,
        scheduled_at=scheduled_at,
        deadline_at=deadline_at,
    )


def _supported_operation(draft: GenerationDraft, catalog: ProviderCatalog) -> OperationType:
    """The draft's operation, known and offered by its provider (else the first error alone)."""
    try:
        operation = OperationType(draft.operation_type)
    except ValueError:
        choices = ", ".join(OperationType)
        raise InvalidRequest(
            [FieldError("operation_type", "invalid_choice", f"must be one of {choices}")]
        ) from None
    if not catalog.is_known(draft.provider_id):
        raise UnsupportedProvider(
            [FieldError("provider_id", "unsupported_provider", "no such provider")]
        )
    if not catalog.supports(draft.provider_id, operation):
        raise UnsupportedOperation(
            [
                FieldError(
                    "operation_type",
                    "unsupported_operation",
                    f"provider {draft.provider_id!r} does not support {operation}",
                )
            ]
        )
    return operation


@dataclass(frozen=True)
class _CheckedParams:
    canonical: JsonObject
    #: The user's inputs, then those given as URL params (`params.image_url`).
    inputs: tuple[InputSpec, ...]


def _checked_params(
    draft: GenerationDraft,
    operation: OperationType,
    catalog: ProviderCatalog,
    errors: list[FieldError],
) -> _CheckedParams | None:
    """The canonical params and inputs; None when the params themselves are invalid (their
    errors are appended to `errors`, as are those of provider options and URL inputs)."""
    try:
        valid = validate_params(operation, draft.params)
    except InvalidRequest as exc:
        errors.extend(exc.errors)
        return None
    canonical = valid.canonical
    options = canonical.get("provider_options", {})
    for issue in catalog.provider_options_problems(draft.provider_id, operation, options):
        where = f"params.provider_options.{issue.field}".rstrip(".").replace(".[", "[")
        errors.append(FieldError(where, issue.code, issue.message))
    inputs = tuple(draft.inputs)
    for role, url in valid.url_inputs.items():
        if any(i.role == role for i in inputs):
            errors.append(
                FieldError(
                    "params.image_url",
                    "conflict",
                    f"give the {role} either as params.image_url or as an input, not both",
                )
            )
        # Appended, so that `inputs[i]` in error messages still means the user's i-th input.
        inputs = (*inputs, InputSpec(role=role, url=url))
    return _CheckedParams(canonical=canonical, inputs=inputs)


def _metadata_problems(metadata: Mapping[str, Any]) -> list[FieldError]:
    problems = json_problems(dict(metadata), "metadata", max_depth=MAX_JSON_DEPTH)
    if not problems and encoded_size(dict(metadata)) > MAX_METADATA_BYTES:
        problems.append(
            FieldError(
                "metadata", "too_large", f"must be at most {MAX_METADATA_BYTES} bytes as JSON"
            )
        )
    return problems


def _schedule(
    draft: GenerationDraft, limits: RequestLimits, now: datetime, errors: list[FieldError]
) -> tuple[datetime | None, datetime]:
    # Compare before converting: converting an out-of-range datetime to UTC can overflow.
    horizon = now + limits.max_deadline
    scheduled_at = draft.scheduled_at
    if scheduled_at is not None and scheduled_at > horizon:
        errors.append(
            FieldError(
                "scheduled_at", "out_of_range", f"must be at most {limits.max_deadline} ahead"
            )
        )
        scheduled_at = None
    if draft.deadline is None:
        start = max(now, scheduled_at) if scheduled_at is not None else now
        deadline_at = min(start + limits.default_deadline, horizon)
    elif draft.deadline <= now:
        errors.append(FieldError("deadline", "in_past", "must be in the future"))
        deadline_at = now
    elif draft.deadline > horizon:
        errors.append(
            FieldError("deadline", "out_of_range", f"must be at most {limits.max_deadline} ahead")
        )
        deadline_at = horizon
    else:
        deadline_at = draft.deadline
    if scheduled_at is not None and deadline_at <= scheduled_at and not errors:
        field_name = "deadline" if draft.deadline is not None else "scheduled_at"
        errors.append(
            FieldError(field_name, "out_of_range", "the deadline must be after scheduled_at")
        )
    return (
        scheduled_at.astimezone(UTC) if scheduled_at is not None else None,
        deadline_at.astimezone(UTC),
    )


def canonical_inputs(
    inputs: Sequence[InputSpec],
    sources: Mapping[UUID, Generation],
    *,
    upload_keys: Mapping[UUID, str] | None = None,
    signed: Mapping[str, str] | None = None,
) -> list[JsonObject]:
    """Every input as a URL a provider can fetch.

    One naming an earlier generation takes that generation's stored copy (a presigned GET from
    `signed`, by object key) once genbus holds one, else the provider's URL; one naming an
    upload takes the upload's presigned GET. Such inputs also keep a stable `ref`
    (`generation:<id>`, `upload:<id>`), which the reproducible hash uses instead of the URL.

    `sources` holds the referenced generations the requesting user may see (a missing one, or
    another user's, is absent); `upload_keys` the user's uploads (None: uploads are off).
    Raises `InvalidRequest` naming each unusable input.
    """
    signed = signed or {}
    resolved: list[JsonObject] = []
    errors: list[FieldError] = []
    for index, item in enumerate(inputs):
        if item.upload_id is not None:
            where = f"inputs[{index}].upload_id"
            key = (upload_keys or {}).get(item.upload_id)
            if upload_keys is None:
                errors.append(FieldError(where, "uploads_disabled", "uploads are not enabled"))
            elif key is None or key not in signed:
                errors.append(FieldError(where, "upload_not_found", "no such upload"))
            else:
                ref = f"upload:{item.upload_id}"
                resolved.append({"role": item.role, "url": signed[key], "ref": ref})
            continue
        if item.generation_id is None:
            resolved.append({"role": item.role, "url": item.url})
            continue
        where = f"inputs[{index}].generation_id"
        source = sources.get(item.generation_id)
        if source is None:
            errors.append(FieldError(where, "generation_not_found", "no such generation"))
        elif source.status is not GenerationStatus.COMPLETED or source.asset is None:
            errors.append(
                FieldError(where, "generation_not_completed", "that generation has no asset yet")
            )
        elif (key := stored_asset_key(source.id)) in signed and source.asset.stored:
            ref = f"generation:{source.id}"
            resolved.append({"role": item.role, "url": signed[key], "ref": ref})
        else:
            resolved.append({"role": item.role, "url": str(source.asset.url)})
    if errors:
        raise InvalidRequest(errors)
    return resolved
