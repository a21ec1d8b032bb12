"""park: stores the task token of the job's parked wait (a `.waitForTaskToken` task), so that a
task-finished push can wake it; wakes it at once when a push came first. See `t2v.push`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.contract import ParkRequest
from t2v.push import park_wait
from t2v.wiring import push_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # not patch_all: it imports sqlite3, http.client, ...


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ParkRequest.model_validate(event)
    logger.append_keys(job_id=request.job_id)
    result = park_wait(request, push_deps())
    logger.info("parked" if result.parked else "woken at once")
    return result.model_dump(mode="json")
