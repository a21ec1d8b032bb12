"""status: one provider query per invocation; returns the next poll turn (decision, wait, outcome)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.contract import PollTurn
from t2v.usecases.poll import poll_job
from t2v.wiring import provider_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    turn = PollTurn.model_validate(event)
    logger.append_keys(job_id=turn.job_id, task_id=turn.task_id)
    result = poll_job(turn, provider_deps())
    if isinstance(result, PollTurn):
        logger.info(
            "polled",
            extra={
                "decision": result.decision.value,
                "task_status": result.task_status,
                "polls": result.polls,
                "wait": result.wait_seconds,
            },
        )
    else:  # a foreign task released, and the provider full for the job's own create
        logger.info("queued for capacity", extra={"turns": result.turns})
    return result.model_dump(mode="json")
