"""status: one provider query per invocation; returns the state and the seconds to wait next."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.pipeline import poll_job
from t2v.wiring import provider_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.get("job_id"), task_id=event.get("task_id"))
    result = poll_job(event, provider_deps())
    logger.info(
        "polled", extra={"state": result["state"], "polls": result["polls"], "wait": result["wait_seconds"]}
    )
    return result
