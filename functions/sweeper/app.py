"""sweeper: on a schedule, start jobs that were never started, end jobs whose workflow is gone, and
announce outcomes that were never announced (t2v.sweeper)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.sweeper import sweep
from t2v.wiring import sweep_deps

logger = Logger()
tracer = Tracer(patch_modules=["botocore", "httpx"])  # not patch_all: it imports sqlite3, http.client, ...


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep(sweep_deps()).as_dict()
    if any(value for key, value in report.items() if key != "indexed"):
        logger.warning("swept", extra=report)  # each entry is a crash the pipeline recovered from
    elif report["indexed"]:
        logger.info("indexed ended jobs for listings by status", extra=report)
    return report
