"""intake: S3 prompt files and EventBridge `Video Generation Requested` events start jobs; a .jsonl
file opens a batch."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.intake import CONTINUATION_KEY, handle_continuation, handle_eventbridge, handle_s3_records
from t2v.wiring import intake_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # AWS calls only (patch_all would import httpx, sqlite3, ...)
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if CONTINUATION_KEY in event:  # the rest of a .jsonl an earlier release handed on: its batch runs it
        report = handle_continuation(event, intake_deps())
    elif "Records" in event:
        report = handle_s3_records(event, intake_deps())
    else:
        logger.append_keys(event_id=event.get("id"))
        report = handle_eventbridge(event, intake_deps())
    metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=len(report.started))
    metrics.add_metric(name="RequestsRejected", unit=MetricUnit.Count, value=len(report.rejected))
    metrics.add_metric(name="BatchesOpened", unit=MetricUnit.Count, value=len(report.batches))
    logger.info("intake done", extra=report.as_dict())
    return report.as_dict()
