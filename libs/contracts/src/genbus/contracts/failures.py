"""The failures every service may report for a generation: one stable code, one meaning.

A generation that ends failed carries an `ErrorInfo`; the ones raised by genbus itself (not
passed on from a provider) are defined here once, so the api, dispatcher and poller agree on
each code and on whether the user may retry.
"""

from __future__ import annotations

from genbus.contracts.common import ErrorInfo

#: Nothing reported an outcome before the generation's deadline.
DEADLINE_EXCEEDED = ErrorInfo(
    code="deadline_exceeded",
    message="the generation did not finish before its deadline",
    retryable=True,
)

#: A submission reached the provider but its answer was lost, and the provider offers no way to
#: find the job or to replay the request safely: submitting again could bill a second job.
SUBMISSION_OUTCOME_UNKNOWN = ErrorInfo(
    code="submission_outcome_unknown",
    message=(
        "the provider may have accepted the job but its answer was lost; it was not submitted "
        "again to avoid a second paid job. Retry the generation if no result arrives"
    ),
    retryable=True,
)

#: The account the job was submitted on is not in the account directory.
ACCOUNT_UNKNOWN = ErrorInfo(
    code="account_unknown",
    message="the provider account of this job is not in the account directory",
    retryable=True,
)

#: The account's credentials cannot be decrypted with the configured keys.
ACCOUNT_CREDENTIALS_UNREADABLE = ErrorInfo(
    code="account_credentials_unreadable",
    message="the provider account's credentials cannot be decrypted with the configured keys",
    retryable=True,
)

#: The account directory holds an entry that is not a valid account record.
ACCOUNT_ENTRY_INVALID = ErrorInfo(
    code="account_entry_invalid",
    message="the provider account's directory entry is invalid",
    retryable=True,
)

#: The job names a provider this service has no adapter for.
UNSUPPORTED_PROVIDER = ErrorInfo(
    code="unsupported_provider", message="no adapter for this provider", retryable=False
)

#: The provider reported the job failed without a code of its own.
PROVIDER_FAILED = ErrorInfo(
    code="provider_failed", message="the provider reported the job failed", retryable=False
)

#: Every failure genbus itself reports, by code.
FAILURES: dict[str, ErrorInfo] = {
    failure.code: failure
    for failure in (
        DEADLINE_EXCEEDED,
        SUBMISSION_OUTCOME_UNKNOWN,
        ACCOUNT_UNKNOWN,
        ACCOUNT_CREDENTIALS_UNREADABLE,
        ACCOUNT_ENTRY_INVALID,
        UNSUPPORTED_PROVIDER,
        PROVIDER_FAILED,
    )
}
