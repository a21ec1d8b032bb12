"""api: the REST API in front of the pipeline (POST/GET/DELETE /videos). An adapter, no business logic."""

import json
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.api.checks import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    UnsupportedMediaTypeError,
    base_path,
    check_body,
    invalid_request,
)
from t2v.api.views import Accepted, ErrorResponse, JobPage, JobView
from t2v.errors import (
    CreateInProgressError,
    ForbiddenError,
    IdempotencyConflictError,
    JobNotFoundError,
    NotCancelableError,
    ProviderError,
    RetryableProviderError,
    TerminalProviderError,
)
from t2v.jobs import JobStatus
from t2v.jsontext import loads
from t2v.request import InvalidRequestError, VideoRequest
from t2v.usecases.videos import (
    Caller,
    DailyBudgetError,
    accept_video,
    caller_from,
    cancel_video,
    get_video,
    list_videos,
)
from t2v.wiring import build_api_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...
# Any unreadable body (too-deep nesting, over-long numbers too) is a 400 naming "body", never a 500.
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=loads)
_deps = cache(build_api_deps)

# The one mapping of typed errors to HTTP statuses; the first matching class wins (None: its own code).
HTTP_ERRORS: tuple[tuple[type[Exception], HTTPStatus, str | None], ...] = (
    (DailyBudgetError, HTTPStatus.TOO_MANY_REQUESTS, None),
    (InvalidRequestError, HTTPStatus.BAD_REQUEST, None),
    (ForbiddenError, HTTPStatus.FORBIDDEN, None),
    (NotFoundError, HTTPStatus.NOT_FOUND, "NotFound"),
    (JobNotFoundError, HTTPStatus.NOT_FOUND, None),
    (NotCancelableError, HTTPStatus.CONFLICT, None),
    (IdempotencyConflictError, HTTPStatus.CONFLICT, None),
    (CreateInProgressError, HTTPStatus.CONFLICT, None),
    (TerminalProviderError, HTTPStatus.BAD_GATEWAY, None),
    (RetryableProviderError, HTTPStatus.SERVICE_UNAVAILABLE, None),
    (RequestUnsupportedContentType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
    (UnsupportedMediaTypeError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, None),
)


def _caller() -> Caller:
    """The IAM identity API Gateway verified (AWS_IAM authorization): whose jobs these are."""
    return caller_from(app.current_event.request_context.identity.user_arn, _deps().settings)


def _doc(description: str, model: type[Any] = ErrorResponse) -> OpenAPIResponse:
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}


@app.post(
    "/videos",
    status_code=202,
    summary="Request a video; an Idempotency-Key makes retries safe",
    responses={
        202: _doc("Accepted; the Location header points at the job", Accepted),
        400: _doc("Invalid request: `fields` names each field and its rule"),
        409: _doc("The Idempotency-Key was used before with a different body"),
        415: _doc("The body is not JSON (`fields` names the Content-Type)"),
        429: _doc(
            "BudgetExceeded: the request cannot fit the day's remaining budget (DailyBudgetSeconds); "
            "`fields` names `duration`, Retry-After gives the seconds until 00:00 UTC"
        ),
    },
)
def create_video(
    body: Annotated[VideoRequest, Body()],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS)
    ] = None,
) -> Response[Accepted]:
    identity = app.current_event.request_context.identity
    origin = {
        "request_id": app.current_event.request_context.request_id,
        "caller": identity.user_arn or identity.api_key_id or identity.source_ip,
    }
    # `body` is the one validation of the request (the resolver's, against the contract's model).
    accepted = accept_video(
        body,
        idempotency_key=idempotency_key,
        origin=origin,
        caller=_caller(),
        deps=_deps(),
        base_path=_base_path(),
    )
    return Response(202, content_types.APPLICATION_JSON, accepted, {"Location": accepted.links["self"]})


@app.get(
    "/videos/<job_id>",
    summary="Read one of the caller's jobs",
    responses={200: _doc("The job", JobView), 404: _doc("No such job (or another caller's)")},
)
def read_video(job_id: str) -> JobView:
    return get_video(job_id, _caller(), _deps(), _base_path())


@app.get(
    "/videos",
    summary="List the caller's recent jobs (every caller's for an admin)",
    responses={200: _doc("Newest first", JobPage), 400: _doc("Bad query")},
)
def list_recent(
    status: Annotated[JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> JobPage:
    return list_videos(
        status=status, limit=limit, cursor=cursor, caller=_caller(), deps=_deps(), base_path=_base_path()
    )


@app.delete(
    "/videos/<job_id>",
    summary="Cancel a job (the provider cancels only PENDING tasks)",
    responses={
        200: _doc("Canceled", JobView),
        404: _doc("No such job (or another caller's)"),
        409: _doc("The job already ended, its provider task is past PENDING, or its create is in flight"),
        502: _doc("The provider answered with an error; `code` is the provider's"),
    },
)
def cancel(job_id: str) -> JobView:
    return cancel_video(job_id, _caller(), _deps(), _base_path())


def _base_path() -> str:
    """What precedes the routes in the caller's URL (the stage, or a custom domain's base path)."""
    event = app.current_event
    return base_path(event.request_context.path, event.path, event.request_context.stage)


def error_response(exc: Exception) -> Response[Any]:
    if isinstance(exc, RequestValidationError):
        exc = invalid_request(exc.errors())
    status, code = next(((s, c) for cls, s, c in HTTP_ERRORS if isinstance(exc, cls)), (None, None))
    if status is None and isinstance(exc, ServiceError):  # the resolver's own (e.g. unsupported media type)
        status, code = HTTPStatus(exc.status_code), HTTPStatus(exc.status_code).phrase.replace(" ", "")
    if status is None:
        logger.exception("unhandled error")
        status, code, exc = HTTPStatus.INTERNAL_SERVER_ERROR, "InternalError", Exception("internal error")
    message = str(exc) or f"{status.phrase}: {app.current_event.http_method} {app.current_event.path}"
    error: dict[str, Any] = {"code": code or getattr(exc, "code", type(exc).__name__), "message": message}
    if isinstance(exc, ProviderError):
        error.update(
            code=exc.provider_code or exc.code, message=exc.provider_message, request_id=exc.request_id
        )
    if isinstance(exc, InvalidRequestError | UnsupportedMediaTypeError):
        error["fields"] = [e.as_dict() for e in exc.errors]
    if status >= 500:
        logger.warning("request failed", extra={"status": int(status), "error": error})
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, DailyBudgetError) else None
    return Response(
        int(status), content_types.APPLICATION_JSON, json.dumps({"error": error}, ensure_ascii=False), headers
    )


def _refused(exc: UnsupportedMediaTypeError | InvalidRequestError) -> dict[str, Any]:
    status = next(s for cls, s, _ in HTTP_ERRORS if isinstance(exc, cls))
    error = {"code": exc.code, "message": str(exc), "fields": [e.as_dict() for e in exc.errors]}
    body = json.dumps({"error": error}, ensure_ascii=False)
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": body,
    }


app.exception_handler(Exception)(error_response)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Checked before routing: the resolver's form and multipart parsers would run first (and can crash).
    try:
        check_body(
            event.get("headers"),
            event.get("body"),
            is_base64=bool(event.get("isBase64Encoded")),
            method=str(event.get("httpMethod") or ""),
        )
    except (UnsupportedMediaTypeError, InvalidRequestError) as exc:
        return _refused(exc)
    return app.resolve(event, context)
