"""moto's Step Functions, patched, runs the batch workflow's Distributed Map as AWS does: an ItemReader
over JSON Lines, an ItemBatcher, and a child that runs one named execution per item (startExecution.sync:2).

moto runs in-process (`mock_aws`), with no sandbox running: these patches need no `Runtime`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from t2v_sandbox import patches, patches_map

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
BUCKET = "batch-inputs"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    patches.install()
    assert patches.active() is None  # no sandbox runtime: the map patches work without one
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield s3, boto3.client("stepfunctions", region_name=REGION)


def create(sfn: Any, definition: dict[str, Any], name: str | None = None) -> str:
    arn: str = sfn.create_state_machine(
        name=name or f"sm-{uuid.uuid4().hex[:12]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return arn


def run(sfn: Any, arn: str, payload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """Start an execution (moto runs it in a thread) and wait for it to end."""
    execution = sfn.start_execution(
        stateMachineArn=arn, name=name or f"ex-{uuid.uuid4().hex[:12]}", input=json.dumps(payload)
    )["executionArn"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError(f"{execution} still running")


def distributed_map(
    *,
    reader_config: dict[str, Any] | None = None,
    batcher: dict[str, Any] | None = None,
    processor: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A state machine of one Distributed Map over the JSON Lines object `$.key`; its child returns its input."""
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": reader_config or {"InputType": "JSONL"},
            "Parameters": {"Bucket": BUCKET, "Key.$": "$.key"},
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            **(processor or {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}),
        },
        "End": True,
        **fields,
    }
    if batcher is not None:
        state["ItemBatcher"] = batcher
    return {"StartAt": "Lines", "States": {"Lines": state}}


def put_lines(s3: Any, key: str, body: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


SEVEN = '{"id": 1}\n\n{"id": 2}\n"two and a half"\n   \n{"id": 3}\r\n{"id": 4}\n[5]\n{"id": 6}\n'
SEVEN_ITEMS: list[Any] = [{"id": 1}, {"id": 2}, "two and a half", {"id": 3}, {"id": 4}, [5], {"id": 6}]


def test_a_jsonl_object_is_read_line_by_line_and_batched_in_order(aws: tuple[Any, Any]) -> None:
    s3, sfn = aws
    put_lines(s3, "in.jsonl", SEVEN)
    arn = create(
        sfn,
        distributed_map(
            batcher={"MaxItemsPerBatch": 3, "BatchInput": {"batch_id.$": "$.batch_id", "fixed": "x"}}
        ),
    )

    result = run(sfn, arn, {"key": "in.jsonl", "batch_id": "b-1"})

    assert result["status"] == "SUCCEEDED", result
    batch_input = {"batch_id": "b-1", "fixed": "x"}
    assert json.loads(result["output"]) == [
        {"Items": SEVEN_ITEMS[0:3], "BatchInput": batch_input},
        {"Items": SEVEN_ITEMS[3:6], "BatchInput": batch_input},
        {"Items": SEVEN_ITEMS[6:7], "BatchInput": batch_input},
    ]


def test_max_items_limits_the_items_and_lines_past_them_are_not_read(aws: tuple[Any, Any]) -> None:
    s3, sfn = aws
    put_lines(s3, "in.jsonl", '{"id": 1}\n\n{"id": 2}\n{"id": 3}\n{"id": 4}\nnot json\n')
    arn = create(
        sfn,
        distributed_map(reader_config={"InputType": "JSONL", "MaxItems": 4}, batcher={"MaxItemsPerBatch": 3}),
    )

    result = run(sfn, arn, {"key": "in.jsonl"})

    assert result["status"] == "SUCCEEDED", result
    # No BatchInput declared: the children's input has none.
    assert json.loads(result["output"]) == [
        {"Items": [{"id": 1}, {"id": 2}, {"id": 3}]},
        {"Items": [{"id": 4}]},
    ]


def test_a_line_that_is_not_json_fails_the_map_with_item_reader_failed(aws: tuple[Any, Any]) -> None:
    s3, sfn = aws
    put_lines(s3, "bad.jsonl", '{"id": 1}\n\n{"id": 2\n{"id": 3}\n')
    arn = create(sfn, distributed_map(batcher={"MaxItemsPerBatch": 3}))

    result = run(sfn, arn, {"key": "bad.jsonl"})

    assert result["status"] == "FAILED"
    assert result["error"] == "States.ItemReaderFailed"
    assert "line 3 of the JSONL source is not valid JSON" in result["cause"]


def test_a_jsonl_reader_without_batcher_gives_one_child_per_line(aws: tuple[Any, Any]) -> None:
    s3, sfn = aws
    put_lines(s3, "in.jsonl", SEVEN)
    arn = create(sfn, distributed_map())

    result = run(sfn, arn, {"key": "in.jsonl"})

    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == SEVEN_ITEMS


def test_the_item_selector_shapes_each_item_before_batching(aws: tuple[Any, Any]) -> None:
    s3, sfn = aws
    put_lines(s3, "in.jsonl", '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n')
    arn = create(
        sfn,
        distributed_map(
            batcher={"MaxItemsPerBatch": 2, "BatchInput": {"total.$": "States.ArrayLength($.ids)"}},
            ItemSelector={
                "job_id.$": "$$.Map.Item.Value.id",
                "index.$": "$$.Map.Item.Index",
                "owner.$": "$.owner",
            },
        ),
    )

    result = run(sfn, arn, {"key": "in.jsonl", "owner": "ann", "ids": [1, 2, 3]})

    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == [
        {
            "Items": [
                {"job_id": "a", "index": 0, "owner": "ann"},
                {"job_id": "b", "index": 1, "owner": "ann"},
            ],
            "BatchInput": {"total": 3},
        },
        {"Items": [{"job_id": "c", "index": 2, "owner": "ann"}], "BatchInput": {"total": 3}},
    ]


def test_max_input_bytes_closes_a_batch_before_it_grows_too_large(aws: tuple[Any, Any]) -> None:
    s3, sfn = aws
    items = [{"n": i, "pad": "x" * 20} for i in range(6)]
    put_lines(s3, "in.jsonl", "\n".join(json.dumps(item) for item in items))
    # {"Items":[],"BatchInput":{"b":1}} is 33 bytes, each item 36 (and a comma): two fit (106), not three
    limit = 110
    arn = create(
        sfn,
        distributed_map(
            batcher={"MaxItemsPerBatch": 5, "MaxInputBytesPerBatch": limit, "BatchInput": {"b": 1}}
        ),
    )

    result = run(sfn, arn, {"key": "in.jsonl"})

    assert result["status"] == "SUCCEEDED", result
    batches = json.loads(result["output"])
    assert [batch["Items"] for batch in batches] == [items[0:2], items[2:4], items[4:6]]
    for batch in batches:
        assert len(json.dumps(batch, separators=(",", ":"))) <= limit


def test_batch_byte_accounting() -> None:
    batcher = patches_map.ItemBatcher(max_items=None, max_bytes=30, batch_input=None)
    # {"Items":[]} is 12 bytes; "aaaa" 6 and each item after the first one more for its comma.
    assert batcher.batches(["aaaa", "bbbb", "cccc", "dd"], None) == [
        {"Items": ["aaaa", "bbbb"]},
        {"Items": ["cccc", "dd"]},
    ]
    assert len(json.dumps({"Items": ["aaaa", "bbbb"]}, separators=(",", ":"))) == 25
    with pytest.raises(ValueError, match="does not fit"):
        batcher.batches(["y" * 40], None)
    assert batcher.batches([], None) == []


def test_json_lines() -> None:
    assert list(patches_map.json_lines('1\r\n\n "a" \n{"b": [2]}\n\n', 10)) == [1, "a", {"b": [2]}]
    assert list(patches_map.json_lines("1\n2\n{oops\n", 2)) == [1, 2]
    assert list(patches_map.json_lines("", 5)) == []
    with pytest.raises(ValueError, match="line 3 "):
        list(patches_map.json_lines("1\n\n{oops\n", 5))


def test_the_stored_definition_is_the_one_created(aws: tuple[Any, Any]) -> None:
    _, sfn = aws
    definition = json.dumps(
        distributed_map(batcher={"MaxItemsPerBatch": 3, "BatchInput": {"a.$": "$.a"}}), indent=2
    )
    arn = sfn.create_state_machine(name="stored", definition=definition, roleArn=ROLE)["stateMachineArn"]

    assert sfn.describe_state_machine(stateMachineArn=arn)["definition"] == definition


def test_a_definition_without_these_features_is_parsed_as_given(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, sfn = aws
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    plain = distributed_map(reader_config={"InputType": "JSON"})
    text = json.dumps(plain)
    assert patches_map._take_item_batchers(text) == (text, {})
    program, _ = AmazonStateLanguageParser.parse(text)
    iteration = program.states.states["Lines"].iteration_component
    assert not hasattr(iteration, "_t2v_item_batcher")

    # And it runs as moto ships it: a JSON array, one child per element.
    put_lines(s3, "in.json", json.dumps([{"id": 1}, {"id": 2}]))
    result = run(sfn, create(sfn, plain), {"key": "in.json"})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == [{"id": 1}, {"id": 2}]


@pytest.mark.parametrize(
    ("batcher", "processor_mode", "message"),
    [
        ({"MaxItemsPerBatch": 2}, "INLINE", "only a DISTRIBUTED Map"),
        ({"BatchInput": {"a": 1}}, "DISTRIBUTED", "needs MaxItemsPerBatch or MaxInputBytesPerBatch"),
        ({"MaxItemsPerBatch": 0}, "DISTRIBUTED", "MaxItemsPerBatch must be a positive integer"),
        ({"MaxInputBytesPerBatch": 300_000}, "DISTRIBUTED", "up to 262144"),
        ({"MaxItemsPerBatchPath": "$.n"}, "DISTRIBUTED", "unsupported fields"),
    ],
)
def test_an_invalid_item_batcher_is_an_invalid_definition(
    aws: tuple[Any, Any], batcher: dict[str, Any], processor_mode: str, message: str
) -> None:
    _, sfn = aws
    definition = distributed_map(batcher=batcher)
    definition["States"]["Lines"]["ItemProcessor"]["ProcessorConfig"] = {"Mode": processor_mode}
    # moto's InvalidDefinition reaches boto3 without its error code: only the message says it.
    with pytest.raises(ClientError, match=f"ASLParserException .*{message}"):
        create(sfn, definition)


# --- The batch workflow's child: one named execution per line, its failure caught -------------------
JOB = {
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}],
            "Default": "Refuse",
        },
        "Done": {"Type": "Pass", "Parameters": {"video.$": "States.Format('v-{}', $.n)"}, "End": True},
        "Refuse": {"Type": "Fail", "Error": "JobFailed", "Cause": "not ok"},
    },
}


def batch_workflow(job_arn: str) -> dict[str, Any]:
    run_line = {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": job_arn, "Name.$": "$.job_id", "Input.$": "$.input"},
        "ResultSelector": {"status.$": "$.Status", "output.$": "$.Output", "name.$": "$.Name"},
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
        "End": True,
    }
    failed = {"Type": "Pass", "Parameters": {"job_id.$": "$.job_id", "error.$": "$.error.Error"}, "End": True}
    return distributed_map(
        batcher={"MaxItemsPerBatch": 2, "BatchInput": {"batch_id.$": "$.batch_id"}},
        processor={
            "StartAt": "RunLines",
            "States": {
                "RunLines": {
                    "Type": "Map",
                    "ItemsPath": "$.Items",
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "INLINE"},
                        "StartAt": "RunLine",
                        "States": {"RunLine": run_line, "Failed": failed},
                    },
                    "End": True,
                }
            },
        },
    )


def test_a_child_runs_one_named_execution_per_item_and_catches_failures(aws: tuple[Any, Any]) -> None:
    s3, sfn = aws
    lines = [{"job_id": f"job-{n}", "input": {"ok": n != 1 and n != 3, "n": n}} for n in range(5)]
    put_lines(s3, "batch.jsonl", "\n".join(json.dumps(line) for line in lines))
    job_arn = create(sfn, JOB, name="job")
    parent = create(sfn, batch_workflow(job_arn), name="batch")

    first = run(sfn, parent, {"key": "batch.jsonl", "batch_id": "b-1"})

    assert first["status"] == "SUCCEEDED", first

    def ok(n: int) -> dict[str, Any]:
        return {"status": "SUCCEEDED", "output": {"video": f"v-{n}"}, "name": f"job-{n}"}

    def refused(n: int) -> dict[str, Any]:
        return {"job_id": f"job-{n}", "error": "States.TaskFailed"}

    assert json.loads(first["output"]) == [[ok(0), refused(1)], [ok(2), refused(3)], [ok(4)]]
    executions = {e["name"]: e["status"] for e in sfn.list_executions(stateMachineArn=job_arn)["executions"]}
    assert executions == {
        "job-0": "SUCCEEDED",
        "job-1": "FAILED",
        "job-2": "SUCCEEDED",
        "job-3": "FAILED",
        "job-4": "SUCCEEDED",
    }

    # The same lines again: each name is taken by an ended execution, a failure the Catch handles.
    second = run(sfn, parent, {"key": "batch.jsonl", "batch_id": "b-1"})

    assert second["status"] == "SUCCEEDED", second
    errors = [line["error"] for batch in json.loads(second["output"]) for line in batch]
    assert errors == ["StepFunctions.ExecutionAlreadyExistsException"] * 5
    assert len(sfn.list_executions(stateMachineArn=job_arn)["executions"]) == 5


def test_start_execution_without_sync_answers_in_aws_names(aws: tuple[Any, Any]) -> None:
    _, sfn = aws
    job_arn = create(sfn, JOB)
    starter = create(
        sfn,
        {
            "StartAt": "Start",
            "States": {
                "Start": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::states:startExecution",
                    "Parameters": {
                        "StateMachineArn": job_arn,
                        "Name": "fire-and-forget",
                        "Input": {"ok": True},
                    },
                    "ResultSelector": {"arn.$": "$.ExecutionArn"},
                    "End": True,
                }
            },
        },
    )

    result = run(sfn, starter, {})

    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {
        "arn": job_arn.replace(":stateMachine:", ":execution:") + ":fire-and-forget"
    }
