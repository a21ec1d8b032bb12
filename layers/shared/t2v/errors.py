"""Typed errors of the pipeline, and the one place that classifies provider failures.

Step Functions `Retry`/`Catch` match on the exception class name that Lambda reports as
`errorType`, so each class name below is part of the state machine's contract.
"""

from __future__ import annotations

from typing import Final

# Provider codes (Alibaba Cloud Model Studio error table) that are terminal despite their HTTP status.
QUOTA_OR_BILLING_CODES: Final = frozenset(
    {
        "Throttling.AllocationQuota",
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",
        "CommodityNotPurchased",
        "Arrearage",
    }
)
RETRYABLE_CODES: Final = frozenset(
    {
        "RequestTimeOut",
        "Throttling",
        "Throttling.RateQuota",
        "LimitRequests",
        "InternalError",
        "InternalError.Algo",
        "InternalError.Timeout",
        "SystemError",
        "ModelUnavailable",
    }
)


class PipelineError(Exception):
    """Base of every error this project raises on purpose. `code` is stable and machine-readable."""

    code: str = "PipelineError"
    retryable: bool = False


class ProviderError(PipelineError):
    """DashScope answered with an error (or not at all). Carries what support needs to trace it."""

    code = "ProviderError"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.provider_code = provider_code
        self.provider_message = message
        self.request_id = request_id
        parts = [f"HTTP {http_status}" if http_status else None, provider_code, message]
        text = ": ".join(p for p in parts if p)
        if request_id:
            text += f" (request_id={request_id})"
        super().__init__(text)

    def as_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "http_status": self.http_status,
            "code": self.provider_code,
            "message": self.provider_message,
            "request_id": self.request_id,
        }


class RetryableProviderError(ProviderError):
    """Transient: network errors, 408, 429 rate limits, 5xx, ModelUnavailable. Retry with backoff."""

    code = "ProviderRetryable"
    retryable = True


class ProviderThrottledError(RetryableProviderError):
    """429 rate limit: retry later, more slowly, with jitter."""

    code = "ProviderThrottled"


class TerminalProviderError(ProviderError):
    """400/401/403/404 and quota or billing codes: never retry."""

    code = "ProviderTerminal"


class ProviderAuthError(TerminalProviderError):
    """401/403: the key or the account is wrong; alert a human."""

    code = "ProviderAuth"


class ProviderQuotaError(TerminalProviderError):
    """Quota or billing: do not retry blindly; alert a human."""

    code = "ProviderQuota"


class AmbiguousCreateError(RetryableProviderError):
    """The create request was sent but no answer came back: a task may or may not exist.

    Never answer this with a blind second create; reconcile through list-tasks first.
    """

    code = "AmbiguousCreate"


class IncompleteListError(RetryableProviderError):
    """A list-tasks scan could not read every page: what it did not see may exist. Try again later."""

    code = "IncompleteList"


class CreateInProgressError(PipelineError):
    """Another invocation is creating this job's task right now; retry shortly."""

    code = "CreateInProgress"
    retryable = True


class NotificationInProgressError(PipelineError):
    """Another invocation holds a live claim on announcing this job's outcome; retry shortly."""

    code = "NotificationInProgress"
    retryable = True


class JobAlreadyFinishedError(PipelineError):
    """The job already reached a terminal status; nothing to submit."""

    code = "JobAlreadyFinished"


class BatchCanceledError(PipelineError):
    """The line's batch was canceled before its provider task was created: the job ends CANCELED."""

    code = "BatchCanceled"


class BatchNotFoundError(PipelineError):
    """No such batch (or another caller's)."""

    code = "BatchNotFound"


class BatchNotCancelableError(PipelineError):
    """The batch already ended."""

    code = "NotCancelable"


class BatchRunningError(PipelineError):
    """The batch has no results yet (or none at all: it was refused)."""

    code = "BatchNotEnded"


class BudgetExceededError(PipelineError):
    """The request would take the day's billed seconds over the configured cap."""

    code = "BudgetExceeded"


class ForbiddenError(PipelineError):
    """The request carries no caller identity (the API is meant to run behind IAM authorization)."""

    code = "Forbidden"


class JobNotFoundError(PipelineError):
    code = "NotFound"


class NotCancelableError(PipelineError):
    """The job already ended, or the provider task has left PENDING."""

    code = "NotCancelable"


class IdempotencyConflictError(PipelineError):
    """The Idempotency-Key was used before with a different request body."""

    code = "IdempotencyKeyReused"


class EventPublishError(PipelineError):
    """EventBridge answered PutEvents with failed entries (throttling, an internal failure): the event
    was not sent. Retried like any transient failure; never taken for a delivered event."""

    code = "EventPublishFailed"
    retryable = True


class UnknownTierError(PipelineError):
    """A size, resolution or model with no generation tier: not one of the contract's, so no record
    this code wrote holds it (never quietly taken as 720P)."""

    code = "UnknownTier"

    def __init__(self, key: str, what: str = "size") -> None:
        self.key = key
        super().__init__(f"no generation tier for {what} {key!r}: not one of the contract's {what}s")


def classify_http_error(
    http_status: int, provider_code: str | None, message: str, request_id: str | None
) -> ProviderError:
    """Turn one DashScope error answer into the right typed error. The single source of this rule."""
    kwargs: dict[str, object] = {
        "http_status": http_status,
        "provider_code": provider_code,
        "request_id": request_id,
    }
    if provider_code in QUOTA_OR_BILLING_CODES:
        return ProviderQuotaError(message, **kwargs)  # type: ignore[arg-type]
    if http_status == 429:
        return ProviderThrottledError(message, **kwargs)  # type: ignore[arg-type]
    if http_status in (408,) or http_status >= 500 or provider_code in RETRYABLE_CODES:
        return RetryableProviderError(message, **kwargs)  # type: ignore[arg-type]
    if http_status in (401, 403):
        return ProviderAuthError(message, **kwargs)  # type: ignore[arg-type]
    return TerminalProviderError(message, **kwargs)  # type: ignore[arg-type]


class InvalidCursorError(ValueError):
    """A list cursor this table never handed out (forged, truncated, or of another listing)."""
