"""finalize: store the finished video in S3 and announce the outcome (success or failure) once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.pipeline import finalize_job, record_outcome
from t2v.wiring import finalize_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.get("job_id"), task_id=(event.get("submit") or {}).get("task_id"))
    deps = finalize_deps()
    if event.get("action") == "record_outcome":
        result = record_outcome(event, deps)
        metrics.add_metric(name="VideosFailed", unit=MetricUnit.Count, value=1)
    else:
        result = finalize_job(event, deps)
        metrics.add_metric(name="VideosSucceeded", unit=MetricUnit.Count, value=1)
        usage = (event.get("poll") or {}).get("usage") or {}
        metrics.add_metric(
            name="BilledSeconds", unit=MetricUnit.Seconds, value=float(usage.get("duration", 0))
        )
    metrics.add_metric(
        name="PollsPerJob", unit=MetricUnit.Count, value=float((event.get("poll") or {}).get("polls", 0))
    )
    logger.info("outcome recorded", extra={"status": result["status"]})
    return result
