"""The batch state machine (statemachine/batch.asl.json) against what the code and the limits say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from t2v.adapters.jobs_repo import JOB_TTL_DAYS
from t2v.batches import MAX_BATCH_SECONDS
from t2v.config import BatchSettings

ROOT = Path(__file__).resolve().parents[2]
ASL: dict[str, Any] = json.loads((ROOT / "statemachine" / "batch.asl.json").read_text(encoding="utf-8"))
LINES = ASL["States"]["Lines"]
CHILD = LINES["ItemProcessor"]["States"]
LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"}


def tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        if state["Type"] == "Map":
            found.update(tasks(state["ItemProcessor"]["States"]))
    return found


def test_the_map_reads_json_lines_in_groups_as_a_distributed_map() -> None:
    assert LINES["ItemReader"]["Resource"] == "arn:${Partition}:states:::s3:getObject"
    assert LINES["ItemReader"]["ReaderConfig"] == {"InputType": "JSONL"}
    assert LINES["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert LINES["ItemBatcher"]["BatchInput"] == {"batch_id.$": "$.batch_id"}


def test_lines_in_flight_per_batch_are_what_the_estimate_assumes() -> None:
    in_flight = LINES["ItemBatcher"]["MaxItemsPerBatch"] * LINES["MaxConcurrency"]
    assert in_flight == BatchSettings.model_fields["batch_lines_in_flight"].default == 100
    assert CHILD["RunLines"]["MaxConcurrency"] >= LINES["ItemBatcher"]["MaxItemsPerBatch"]


def test_every_limit_a_batch_meets_outlives_the_longest_batch_accepted() -> None:
    # The execution's timeout, the jobs' records (read for the results at the end), the setting's bound.
    assert ASL["TimeoutSeconds"] >= MAX_BATCH_SECONDS + 86400
    assert ASL["TimeoutSeconds"] < JOB_TTL_DAYS * 86400
    assert BatchSettings.model_fields["max_batch_seconds"].default == MAX_BATCH_SECONDS
    bound = [m for m in BatchSettings.model_fields["max_batch_seconds"].metadata if hasattr(m, "le")]
    assert bound[0].le <= MAX_BATCH_SECONDS


def test_every_task_retries_lambdas_transient_errors_and_every_child_failure_is_caught() -> None:
    for name, state in tasks(ASL["States"]).items():
        if "lambda:invoke" in state["Resource"]:
            retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert retried >= LAMBDA_ERRORS, name
    # A child never fails (the Map would abort the others on AWS, whose tolerance defaults to 0)
    assert CHILD["RecordLines"]["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    run_line = CHILD["RunLines"]["ItemProcessor"]["States"]["RunLine"]
    assert run_line["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert run_line["Resource"] == "arn:${Partition}:states:::states:startExecution.sync:2"
    assert run_line["Parameters"]["Name.$"] == "$.job_id"


def test_the_steps_call_the_batch_functions_actions_with_what_they_read() -> None:
    actions = {
        name: state["Parameters"]["Payload"]["action"]
        for name, state in tasks(ASL["States"]).items()
        if "lambda:invoke" in state["Resource"]
    }
    assert actions == {"ReadFile": "read", "RecordLines": "lines", "Collect": "collect"}
    assert CHILD["RecordLines"]["Parameters"]["Payload"]["items.$"] == "$.Items"
    assert CHILD["RecordLines"]["Parameters"]["Payload"]["batch_id.$"] == "$.BatchInput.batch_id"
    # The read step's answer: where the Map reads (t2v.usecases.batches.read_batch)
    assert LINES["ItemReader"]["Parameters"] == {
        "Bucket.$": "$.read.Payload.lines.bucket",
        "Key.$": "$.read.Payload.lines.key",
    }
    assert ASL["States"]["Accepted"]["Choices"][0]["Variable"] == "$.read.Payload.accepted"
    assert ASL["States"]["Collected"]["Choices"][0]["Variable"] == "$.collect.Payload.done"
