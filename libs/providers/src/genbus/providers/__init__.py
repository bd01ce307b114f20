"""genbus.providers: the provider adapter protocol, its error taxonomy, and the adapters.

Callers depend on `ProviderAdapter` and `behaviour_of`; only bootstrap code names adapter classes.
"""

from genbus.providers._http import DEFAULT_TIMEOUT, HttpAdapter, parse_retry_after
from genbus.providers.credentials import CredentialCipher, CredentialDecryptError, Credentials
from genbus.providers.errors import (
    BEHAVIOURS,
    AuthFailed,
    Behaviour,
    ConcurrencyLimited,
    ContentRejected,
    InvalidRequest,
    JobNotFound,
    OutputRejected,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    SubmitOutcomeUnknown,
    UnsupportedOperation,
    behaviour_of,
)
from genbus.providers.pixverse import (
    PIXVERSE_DEFAULT_BASE_URL,
    PIXVERSE_OPERATIONS,
    PixverseAdapter,
    pixverse_trace_id,
    to_pixverse_body,
)
from genbus.providers.protocol import (
    JobState,
    JobStatus,
    ProviderAdapter,
    ProviderJobRef,
    SubmitGuarantees,
    SubmitRequest,
    SubmitResult,
)
from genbus.providers.registry import (
    ADAPTER_FACTORIES,
    AdapterFactory,
    AdapterRegistry,
    UnknownProvider,
)
from genbus.providers.replicate import (
    REPLICATE_DEFAULT_BASE_URL,
    REPLICATE_OPERATIONS,
    ReplicateAdapter,
    ReplicateModel,
    to_replicate_input,
)
from genbus.providers.sim import SIM_DEFAULT_BASE_URL, SIM_OPERATIONS, SimAdapter

__all__ = [
    "ADAPTER_FACTORIES",
    "BEHAVIOURS",
    "DEFAULT_TIMEOUT",
    "PIXVERSE_DEFAULT_BASE_URL",
    "PIXVERSE_OPERATIONS",
    "REPLICATE_DEFAULT_BASE_URL",
    "REPLICATE_OPERATIONS",
    "SIM_DEFAULT_BASE_URL",
    "SIM_OPERATIONS",
    "AdapterFactory",
    "AdapterRegistry",
    "AuthFailed",
    "Behaviour",
    "ConcurrencyLimited",
    "ContentRejected",
    "CredentialCipher",
    "CredentialDecryptError",
    "Credentials",
    "HttpAdapter",
    "InvalidRequest",
    "JobNotFound",
    "JobState",
    "JobStatus",
    "OutputRejected",
    "PixverseAdapter",
    "ProviderAdapter",
    "ProviderError",
    "ProviderJobRef",
    "ProviderUnavailable",
    "QuotaExhausted",
    "RateLimited",
    "ReplicateAdapter",
    "ReplicateModel",
    "SimAdapter",
    "SubmitGuarantees",
    "SubmitOutcomeUnknown",
    "SubmitRequest",
    "SubmitResult",
    "UnknownProvider",
    "UnsupportedOperation",
    "behaviour_of",
    "parse_retry_after",
    "pixverse_trace_id",
    "to_pixverse_body",
    "to_replicate_input",
]
