"""genbus.contracts: every message the genbus services exchange, and where it travels.

Services publish and subscribe only through the bindings defined here; no subject string
exists anywhere else.
"""

from genbus.contracts.accounts import ACCOUNT_DIRECTORY, AccountDirectoryEntry, KvBinding
from genbus.contracts.bindings import (
    CANCEL_REQUESTED,
    COMPLETED,
    EVENT_BINDINGS,
    REQUESTED,
    SUBMITTED,
    WAITING,
    EventBinding,
)
from genbus.contracts.common import (
    PROVIDER_ID_PATTERN,
    Asset,
    CompletionStatus,
    ErrorInfo,
    InputRef,
    WaitingReason,
)
from genbus.contracts.events import (
    Event,
    GenerationCancelRequested,
    GenerationCompleted,
    GenerationRequested,
    GenerationSubmitted,
    GenerationWaiting,
)
from genbus.contracts.failures import (
    ACCOUNT_CREDENTIALS_UNREADABLE,
    ACCOUNT_ENTRY_INVALID,
    ACCOUNT_UNKNOWN,
    DEADLINE_EXCEEDED,
    FAILURES,
    PROVIDER_FAILED,
    SUBMISSION_OUTCOME_UNKNOWN,
    UNSUPPORTED_PROVIDER,
)
from genbus.contracts.ids import derive_event_id, provider_idempotency_key
from genbus.contracts.notifications import (
    GENERATION_CHANGED,
    GenerationChanged,
    NotificationBinding,
)
from genbus.contracts.streams import (
    DEAD_LETTER_STREAM,
    GENERATIONS_STREAM,
    ConsumerSpec,
    StreamSpec,
    dead_letter_subject,
)
from genbus.contracts.topology import CONSUMERS, SERVICES, ServiceTopology

__all__ = [
    "ACCOUNT_CREDENTIALS_UNREADABLE",
    "ACCOUNT_DIRECTORY",
    "ACCOUNT_ENTRY_INVALID",
    "ACCOUNT_UNKNOWN",
    "CANCEL_REQUESTED",
    "COMPLETED",
    "CONSUMERS",
    "DEADLINE_EXCEEDED",
    "DEAD_LETTER_STREAM",
    "EVENT_BINDINGS",
    "FAILURES",
    "GENERATIONS_STREAM",
    "GENERATION_CHANGED",
    "PROVIDER_FAILED",
    "PROVIDER_ID_PATTERN",
    "REQUESTED",
    "SERVICES",
    "SUBMISSION_OUTCOME_UNKNOWN",
    "SUBMITTED",
    "UNSUPPORTED_PROVIDER",
    "WAITING",
    "AccountDirectoryEntry",
    "Asset",
    "CompletionStatus",
    "ConsumerSpec",
    "ErrorInfo",
    "Event",
    "EventBinding",
    "GenerationCancelRequested",
    "GenerationChanged",
    "GenerationCompleted",
    "GenerationRequested",
    "GenerationSubmitted",
    "GenerationWaiting",
    "InputRef",
    "KvBinding",
    "NotificationBinding",
    "ServiceTopology",
    "StreamSpec",
    "WaitingReason",
    "dead_letter_subject",
    "derive_event_id",
    "provider_idempotency_key",
]
