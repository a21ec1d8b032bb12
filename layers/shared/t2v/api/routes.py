"""What the OpenAPI document (docs/openapi.json) says of each route: its summary and its answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypedDict

from t2v.api.batch_views import BatchPage, BatchResults, BatchView
from t2v.api.views import Accepted, ErrorResponse, JobPage, JobView, ModelsView, UsageView

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseContentModel


class RouteDoc(TypedDict):
    summary: str
    responses: dict[int, OpenAPIResponse]


def _route(summary: str, *answers: tuple[int, str] | tuple[int, str, type[Any]]) -> RouteDoc:
    """Each answer: its status, its description, and its model (ErrorResponse unless named)."""
    responses: dict[int, OpenAPIResponse] = {}
    for status, description, *model in answers:
        schema: OpenAPIResponseContentModel = {"model": model[0] if model else ErrorResponse}
        responses[status] = {"description": description, "content": {"application/json": schema}}
    return RouteDoc(summary=summary, responses=responses)


_NOT_FOUND: Final = (404, "No such job (or another caller's)")
CREATE: Final = _route(
    "Request a video; an Idempotency-Key makes retries safe",
    (202, "Accepted; the Location header points at the job", Accepted),
    (400, "Invalid request: `fields` names each field and its rule"),
    (409, "The Idempotency-Key was used before with a different body"),
    (415, "The body is not JSON (`fields` names the Content-Type)"),
    (
        429,
        "BudgetExceeded: the request cannot fit what is left of the caller's day "
        "(CallerDailyBudgetSeconds) or the account's (DailyBudgetSeconds); `fields` names `duration` "
        "and says which budget, its seconds left and when it renews; Retry-After gives the seconds "
        "until 00:00 UTC",
    ),
)
READ: Final = _route("Read one of the caller's jobs", (200, "The job", JobView), _NOT_FOUND)
LIST: Final = _route(
    "List the caller's recent jobs (every caller's for an admin)",
    (200, "Newest first", JobPage),
    (400, "Bad query"),
)
CANCEL: Final = _route(
    "Cancel a job (the provider cancels only PENDING tasks)",
    (200, "Canceled", JobView),
    _NOT_FOUND,
    (409, "The job already ended, its provider task is past PENDING, or its create is in flight"),
    (502, "The provider answered with an error; `code` is the provider's"),
)
USAGE: Final = _route(
    "The caller's day of billed video seconds: spent, refunded and left, its own and the account's",
    (200, "Today (UTC)", UsageView),
)
MODELS: Final = _route(
    "The model families a request may name: each one's fields, choices, images and image limits",
    (200, "From the registry (t2v.families)", ModelsView),
)

_NO_BATCH: Final = (404, "No such batch (or another caller's)")
BATCH_OPEN: Final = _route(
    "Run a .jsonl in the caller's own folder of the bucket as a batch (a repeated POST finds the same batch)",
    (202, "Opened: the file is read next (status READING)", BatchView),
    (400, "`fields` names `key` and its rule: not .jsonl, not in the caller's folder, no such object"),
)
BATCH_LIST: Final = _route(
    "List the caller's batches, newest first", (200, "A page", BatchPage), (400, "Bad query")
)
BATCH_READ: Final = _route("Read one of the caller's batches", (200, "The batch", BatchView), _NO_BATCH)
BATCH_CANCEL: Final = _route(
    "Cancel a batch: no line starts after this answer; queued lines end CANCELED, PENDING tasks are canceled, running ones finish",
    (200, "CANCELING (or already CANCELED)", BatchView),
    _NO_BATCH,
    (409, "The batch already ended"),
)
BATCH_RESULTS: Final = _route(
    "The batch's results (one line per input line) and summary, as presigned GETs",
    (200, "Ended: the links", BatchResults),
    _NO_BATCH,
    (409, "BatchNotEnded: the batch is still running, or was refused (no results)"),
)
