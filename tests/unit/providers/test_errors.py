from __future__ import annotations

import httpx
import pytest

from genbus.providers import (
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

TAXONOMY = [
    (RateLimited, "rate_limited", Behaviour.BACK_OFF),
    (ConcurrencyLimited, "concurrency_limit", Behaviour.ROTATE),
    (QuotaExhausted, "quota_exhausted", Behaviour.ROTATE),
    (AuthFailed, "unauthorized", Behaviour.DISABLE_ACCOUNT),
    (ContentRejected, "content_rejected", Behaviour.FAIL),
    (InvalidRequest, "invalid_request", Behaviour.FAIL),
    (ProviderUnavailable, "provider_unavailable", Behaviour.RETRY),
    (UnsupportedOperation, "unsupported_operation", Behaviour.FAIL),
    (JobNotFound, "provider_job_not_found", Behaviour.FAIL),
    (OutputRejected, "output_rejected", Behaviour.RETRY),
]


@pytest.mark.parametrize(("error_class", "code", "behaviour"), TAXONOMY)
def test_each_error_has_its_stable_code_and_behaviour(
    error_class: type[ProviderError], code: str, behaviour: Behaviour
) -> None:
    exc = error_class("boom", retry_after_s=4.0)

    assert isinstance(exc, ProviderError)
    assert exc.code == code
    assert exc.behaviour is behaviour
    assert behaviour_of(exc) is behaviour
    assert exc.retryable is (behaviour is not Behaviour.FAIL)
    assert exc.retry_after_s == 4.0
    assert exc.message == "boom"


def test_the_table_covers_every_error_class() -> None:
    assert {cls for cls, _, _ in TAXONOMY} <= set(BEHAVIOURS)


def test_codes_are_unique() -> None:
    codes = [code for _, code, _ in TAXONOMY]
    assert len(codes) == len(set(codes))


def test_an_adapter_subclass_inherits_its_parents_behaviour() -> None:
    class PixverseThrottled(RateLimited):
        pass

    assert behaviour_of(PixverseThrottled()) is Behaviour.BACK_OFF


@pytest.mark.parametrize(
    ("exc", "behaviour"),
    [
        (httpx.ConnectError("refused"), Behaviour.RETRY),
        (httpx.ReadTimeout("slow"), Behaviour.RETRY),
        (TimeoutError(), Behaviour.RETRY),
        (ConnectionResetError(), Behaviour.RETRY),
        (KeyError("bug"), Behaviour.FAIL),
        (ValueError("bug"), Behaviour.FAIL),
    ],
)
def test_behaviour_of_exceptions_outside_the_taxonomy(
    exc: BaseException, behaviour: Behaviour
) -> None:
    assert behaviour_of(exc) is behaviour


def test_to_error_info_carries_code_message_and_retryability() -> None:
    info = ContentRejected("nope").to_error_info()
    assert (info.code, info.message, info.retryable) == ("content_rejected", "nope", False)
    assert RateLimited("slow down").to_error_info().retryable is True


def test_long_messages_are_truncated_to_fit_error_info() -> None:
    exc = InvalidRequest("x" * 5000)
    assert len(exc.message) == 2000
    assert exc.to_error_info().message == "x" * 2000


def test_str_falls_back_to_the_code() -> None:
    assert str(JobNotFound()) == "provider_job_not_found"
    assert str(JobNotFound("gone")) == "gone"


def test_submit_outcome_unknown_is_a_retried_unavailability_with_its_own_code() -> None:
    exc = SubmitOutcomeUnknown("POST timed out", retry_after_s=2.0)

    assert isinstance(exc, ProviderUnavailable)
    assert exc.code == "submit_outcome_unknown"
    assert exc.code not in {code for _, code, _ in TAXONOMY}
    assert behaviour_of(exc) is Behaviour.RETRY
    assert exc.retryable is True
    info = exc.to_error_info()
    assert (info.code, info.message, info.retryable) == (
        "submit_outcome_unknown",
        "POST timed out",
        True,
    )
