"""api: the REST API in front of the pipeline (POST/GET/DELETE /videos and /batches, GET /usage). An adapter,
no business logic."""

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.api import routes
from t2v.api.batch_views import BatchPage, BatchRequest, BatchResults, BatchView
from t2v.api.checks import MAX_IDEMPOTENCY_KEY_CHARS, base_path
from t2v.api.edge import VideosApi
from t2v.api.errors import error_answer, refused_before_routing
from t2v.api.views import Accepted, JobPage, JobView, UsageView
from t2v.families import AnyRequest, describe_models
from t2v.jobs import JobStatus
from t2v.jsontext import loads
from t2v.listing import MAX_QUERY_CHARS, Q_DOC, SINCE_DOC, UNTIL_DOC, Order, parse_listing
from t2v.wiring import build_api_batches, build_api_deps, build_api_reads

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...
# Any unreadable body (too-deep nesting, over-long numbers too) is a 400 naming "body", never a 500.
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=loads)
_deps = cache(build_api_deps)
_reads = cache(build_api_reads)
_batches = cache(lambda: build_api_batches(_deps()))


def _api() -> VideosApi:
    """This call's way in: the IAM identity API Gateway verified, and the base path the caller used."""
    event = app.current_event
    context = event.request_context
    where = base_path(context.path, event.path, context.stage)
    return VideosApi(
        _deps(), _reads(), principal=context.identity.user_arn, base_path=where, batches=_batches
    )


@app.post("/videos", status_code=202, **routes.CREATE)
def create_video(
    body: Annotated[AnyRequest, Body()],  # the one validation of the request: its model family's contract
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS)
    ] = None,
) -> Response[Accepted]:
    identity = app.current_event.request_context.identity
    origin = {
        "request_id": app.current_event.request_context.request_id,
        "caller": identity.user_arn or identity.api_key_id or identity.source_ip,
    }
    accepted = _api().accept(body, idempotency_key=idempotency_key, origin=origin)
    return Response(202, content_types.APPLICATION_JSON, accepted, {"Location": accepted.links["self"]})


@app.get("/videos/<job_id>", **routes.READ)
def read_video(job_id: str) -> JobView:
    return _api().read(job_id)


@app.get("/videos", **routes.LIST)
def list_recent(
    *,
    status: Annotated[JobStatus | None, Query()] = None,
    since: Annotated[str | None, Query(max_length=40, description=SINCE_DOC)] = None,
    until: Annotated[str | None, Query(max_length=40, description=UNTIL_DOC)] = None,
    q: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS, description=Q_DOC)] = None,
    order: Annotated[Order, Query(description="newest (default) or oldest first")] = Order.NEWEST,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    batch: Annotated[
        str | None, Query(max_length=80, description="Only this batch's jobs, in line order")
    ] = None,
) -> JobPage:
    if batch is not None:
        return _api().batch_jobs(batch, limit=limit, cursor=cursor)
    listing = parse_listing(status=status, since=since, until=until, q=q, order=order)
    return _api().recent(listing, limit=limit, cursor=cursor)


@app.delete("/videos/<job_id>", **routes.CANCEL)
def cancel(job_id: str) -> JobView:
    return _api().cancel(job_id)


@app.post("/batches", status_code=202, **routes.BATCH_OPEN)
def open_batch(body: Annotated[BatchRequest, Body()]) -> Response[BatchView]:
    view = _api().open_batch(body)
    return Response(202, content_types.APPLICATION_JSON, view, {"Location": view.links["self"]})


@app.get("/batches", **routes.BATCH_LIST)
def list_batches(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> BatchPage:
    return _api().list_batches(limit=limit, cursor=cursor)


@app.get("/batches/<batch_id>", **routes.BATCH_READ)
def read_batch(batch_id: str) -> BatchView:
    return _api().batch(batch_id)


@app.delete("/batches/<batch_id>", **routes.BATCH_CANCEL)
def cancel_batch(batch_id: str) -> BatchView:
    return _api().cancel_batch(batch_id)


@app.get("/batches/<batch_id>/results", **routes.BATCH_RESULTS)
def batch_results(batch_id: str) -> BatchResults:
    return _api().batch_results(batch_id)


@app.get("/models", **routes.MODELS)
def list_models() -> Response[dict[str, Any]]:
    # Sent as the registry describes it: a key that does not apply is absent, not null (ModelsView documents it).
    return Response(200, content_types.APPLICATION_JSON, describe_models())


@app.get("/usage", **routes.USAGE)
def usage() -> UsageView:
    return _api().usage()


def error_response(exc: Exception) -> Response[str]:
    answer = error_answer(exc, method=app.current_event.http_method, path=app.current_event.path)
    if answer.unexpected:
        logger.exception("unhandled error")
    if answer.status >= 500:
        logger.warning("request failed", extra={"status": answer.status, "error": answer.error})
    return Response(answer.status, content_types.APPLICATION_JSON, answer.body, answer.headers)


app.exception_handler(Exception)(error_response)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Checked before routing: the resolver's form and multipart parsers would run first (and can crash).
    refused = refused_before_routing(event)
    return refused.proxy_response() if refused else app.resolve(event, context)
