"""The one mapping of typed errors to the REST API's answers: status, body and headers.

An error is mapped by its class (the first matching entry of `HTTP_ERRORS` wins), never by its
message; the body is the contract's `{"error": {"code", "message", ...}}` (`t2v.api.views.ErrorResponse`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from t2v.api.checks import UnsupportedMediaTypeError, check_body, invalid_request
from t2v.errors import (
    BatchNotCancelableError,
    BatchNotFoundError,
    BatchRunningError,
    CreateInProgressError,
    ForbiddenError,
    IdempotencyConflictError,
    JobNotFoundError,
    NotCancelableError,
    ProviderError,
    RetryableProviderError,
    TerminalProviderError,
)
from t2v.request import InvalidRequestError
from t2v.usecases.videos import DailyBudgetError

# Each typed error's status; the code None means the error's own `code`.
HTTP_ERRORS: Final[tuple[tuple[type[Exception], HTTPStatus, str | None], ...]] = (
    (DailyBudgetError, HTTPStatus.TOO_MANY_REQUESTS, None),
    (InvalidRequestError, HTTPStatus.BAD_REQUEST, None),
    (ForbiddenError, HTTPStatus.FORBIDDEN, None),
    (NotFoundError, HTTPStatus.NOT_FOUND, "NotFound"),
    (JobNotFoundError, HTTPStatus.NOT_FOUND, None),
    (BatchNotFoundError, HTTPStatus.NOT_FOUND, None),
    (BatchNotCancelableError, HTTPStatus.CONFLICT, None),
    (BatchRunningError, HTTPStatus.CONFLICT, None),
    (NotCancelableError, HTTPStatus.CONFLICT, None),
    (IdempotencyConflictError, HTTPStatus.CONFLICT, None),
    (CreateInProgressError, HTTPStatus.CONFLICT, None),
    (TerminalProviderError, HTTPStatus.BAD_GATEWAY, None),
    (RetryableProviderError, HTTPStatus.SERVICE_UNAVAILABLE, None),
    (RequestUnsupportedContentType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
    (UnsupportedMediaTypeError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, None),
)


@dataclass(frozen=True)
class ErrorAnswer:
    """An error as the API answers it. `unexpected`: no typed error, answered 500 without its details."""

    status: int
    error: dict[str, Any]
    headers: dict[str, str] | None = None
    unexpected: bool = False

    @property
    def body(self) -> str:
        return json.dumps({"error": self.error}, ensure_ascii=False)

    def proxy_response(self) -> dict[str, Any]:
        """As API Gateway's proxy integration takes it, for an answer given without the resolver."""
        headers = {"Content-Type": "application/json", **(self.headers or {})}
        return {"statusCode": self.status, "headers": headers, "body": self.body}


def error_answer(exc: Exception, *, method: str, path: str) -> ErrorAnswer:
    """What the API answers for `exc`, raised while serving `method` `path`."""
    if isinstance(exc, RequestValidationError):
        exc = invalid_request(exc.errors())
    status, code = next(((s, c) for cls, s, c in HTTP_ERRORS if isinstance(exc, cls)), (None, None))
    if status is None and isinstance(exc, ServiceError):  # the resolver's own (e.g. unsupported media type)
        status, code = HTTPStatus(exc.status_code), HTTPStatus(exc.status_code).phrase.replace(" ", "")
    unexpected = status is None
    if status is None:
        status, code, exc = HTTPStatus.INTERNAL_SERVER_ERROR, "InternalError", Exception("internal error")
    error: dict[str, Any] = {
        "code": code or getattr(exc, "code", type(exc).__name__),
        "message": str(exc) or f"{status.phrase}: {method} {path}",
    }
    if isinstance(exc, ProviderError):
        error.update(
            code=exc.provider_code or exc.code, message=exc.provider_message, request_id=exc.request_id
        )
    if isinstance(exc, InvalidRequestError | UnsupportedMediaTypeError):
        error["fields"] = [e.as_dict() for e in exc.errors]
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, DailyBudgetError) else None
    return ErrorAnswer(int(status), error, headers, unexpected)


def refused_before_routing(event: Mapping[str, Any]) -> ErrorAnswer | None:
    """The answer to a proxy event whose body no parser may see (`check_body`); None: route it."""
    method = str(event.get("httpMethod") or "")
    try:
        check_body(
            event.get("headers"),
            event.get("body"),
            is_base64=bool(event.get("isBase64Encoded")),
            method=method,
        )
    except (UnsupportedMediaTypeError, InvalidRequestError) as exc:
        return error_answer(exc, method=method, path=str(event.get("path") or ""))
    return None
