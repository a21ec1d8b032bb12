"""submit: validate the request and create the DashScope task exactly once for the job."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.contract import CapacityWait, SubmitInput
from t2v.usecases.submit import submit_job
from t2v.wiring import provider_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submitted = SubmitInput.model_validate(event)
    logger.append_keys(job_id=submitted.job_id, source=submitted.source)
    turn = submit_job(submitted, provider_deps())
    if isinstance(turn, CapacityWait):
        logger.info("waiting for capacity", extra={"decision": turn.decision, "turns": turn.turns})
        return turn.model_dump(mode="json")
    logger.append_keys(task_id=turn.task_id)
    logger.info("task submitted")
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    return turn.model_dump(mode="json")
