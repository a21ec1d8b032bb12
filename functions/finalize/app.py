"""finalize: store the finished video in S3, or end the job without one; announce the outcome once.

The one reader of Step Functions Catch payloads (RecordFailure): they become an `Ended` outcome here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.contract import FINALIZE_INPUT, CatchInput, Ended, StepError, Succeeded
from t2v.errors import BatchCanceledError, PipelineError
from t2v.jobs import JobStatus
from t2v.request import InvalidRequestError
from t2v.usecases.announce import FirstRecord, end_job
from t2v.usecases.finalize import finalize_job
from t2v.wiring import finalize_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = FINALIZE_INPUT.validate_python(event)
    logger.append_keys(job_id=parsed.job_id)
    deps = finalize_deps()
    polls = 0
    if isinstance(parsed, CatchInput):
        first = FirstRecord(request=parsed.request, source=parsed.source, origin=parsed.origin)
        result = end_job(parsed.job_id, ended_by(parsed.error), deps.announce, first=first).announced
        metrics.add_metric(name="VideosFailed", unit=MetricUnit.Count, value=1)
    elif isinstance(parsed.outcome, Succeeded):
        polls, usage = parsed.polls, parsed.outcome.usage
        result = finalize_job(parsed.job_id, parsed.outcome, deps)
        metrics.add_metric(name="VideosSucceeded", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="BilledSeconds", unit=MetricUnit.Seconds, value=float(usage.get("duration") or 0)
        )
    else:
        polls = parsed.polls
        result = end_job(parsed.job_id, parsed.outcome, deps.announce).announced
        metrics.add_metric(name="VideosFailed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PollsPerJob", unit=MetricUnit.Count, value=float(polls))
    logger.append_keys(task_id=result.task_id)
    logger.info("outcome recorded", extra={"status": result.status.value})
    return result.model_dump(mode="json")


def ended_by(error: StepError) -> Ended:
    """The outcome of a step that failed for good, from what its Catch recorded."""
    if error.Error == "States.Timeout":
        return Ended(
            status=JobStatus.TIMED_OUT, code="Timeout", message="the workflow exceeded its overall deadline"
        )
    if error.Error == BatchCanceledError.__name__:  # the line's batch was canceled before its create
        return Ended(
            status=JobStatus.CANCELED, code=BatchCanceledError.code, message=error.message() or error.Error
        )
    return Ended(status=JobStatus.FAILED, code=_code_for(error.Error), message=error.message() or error.Error)


def _code_for(error_name: str) -> str:
    """The stable code of one of our exception classes, from the name Step Functions reports."""
    pending: list[type[Exception]] = [PipelineError, InvalidRequestError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == error_name:
            return str(getattr(cls, "code", error_name))
        pending.extend(cls.__subclasses__())
    return error_name
