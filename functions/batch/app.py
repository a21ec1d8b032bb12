"""batch: the batch workflow's steps (statemachine/batch.asl.json): read the file, record a Map
child's lines, collect the results."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.usecases.batches import collect_batch, read_batch, record_lines
from t2v.wiring import batch_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # AWS calls only


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action, batch_id = str(event.get("action")), str(event.get("batch_id"))
    logger.append_keys(batch_id=batch_id, action=action)
    if action == "read":
        result = read_batch(batch_id, batch_deps())
    elif action == "lines":
        items = event.get("items") or []
        result = record_lines(batch_id, list(items), batch_deps())
        logger.info("lines recorded", extra={"lines": len(items), "starts": len(result["starts"])})
    elif action == "collect":
        result = collect_batch(batch_id, batch_deps())
    else:
        raise ValueError(f"action: must be read, lines or collect, not {action!r}")
    return result
