"""The intake door (S3 prompt files, EventBridge events) and the budget guard, against moto."""

from __future__ import annotations

import copy
import importlib
import json
import threading
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from t2v import wiring
from t2v.adapters.jobs_repo import JobsRepository
from t2v.errors import BudgetExceededError

from tests.conftest import lambda_context, load_event

intake_app = importlib.import_module("functions.intake.app")
submit_app = importlib.import_module("functions.submit.app")
CTX = lambda_context("intake", request_id="r")


@pytest.fixture
def door(stack: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    sfn = boto3.client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/sfn"
    arn = sfn.create_state_machine(
        name=f"sm-{stack.table}",
        roleArn=role,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", emulator.base_url)
    for cached in (wiring.intake_deps, wiring.finalize_deps, wiring.provider_deps):
        cached.cache_clear()
    yield SimpleNamespace(stack=stack, sfn=sfn, arn=arn, emu=emulator)
    for cached in (wiring.intake_deps, wiring.finalize_deps, wiring.provider_deps):
        cached.cache_clear()


def s3_event(bucket: str, key: str, version: str | None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("intake_s3.json"))
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"] = bucket
    obj["object"]["key"] = quote_plus(key)
    obj["object"]["versionId"] = version
    return event


def executions(door: Any) -> list[dict[str, Any]]:
    listed = door.sfn.list_executions(stateMachineArn=door.arn)["executions"]
    return [json.loads(door.sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in listed]


def test_jsonl_runs_valid_lines_and_reports_the_bad_one_once(door: Any) -> None:
    key = "prompts/小猫 batch.jsonl"
    body = '{"prompt": "a", "size": "640*360"}\n{"prompt": "b", "size": "1920*1080", "duration": 10}\n{"prompt": "c"}\n'
    s3 = boto3.client("s3")
    s3.put_object(Bucket=door.stack.bucket, Key=key, Body=body.encode())
    event = s3_event(door.stack.bucket, key, None)

    report = intake_app.lambda_handler(event, CTX)
    again = intake_app.lambda_handler(event, CTX)  # S3 delivers at least once

    assert len(report["started"]) == 2 and len(report["rejected"]) == 1
    assert again["started"] == [] and sorted(again["duplicates"]) == sorted(report["started"])
    inputs = executions(door)
    assert sorted(i["request"]["prompt"] for i in inputs) == ["a", "c"]
    assert sorted(i["start_delay_seconds"] for i in inputs) == [0, 0]
    assert {i["origin"]["key"] for i in inputs} == {key}
    bad = door.stack.job(report["rejected"][0])
    assert bad["status"] == "FAILED" and bad["error_code"] == "InvalidRequest"
    assert "line 2" in bad["error_message"] and key in bad["error_message"]
    notes = door.stack.notifications()
    assert len(notes) == 1
    assert notes[0]["attributes"] == {
        "status": "FAILED",
        "source": "s3",
        "notification_id": f"{bad['pk']}/FAILED",
    }


def test_txt_file_uses_stack_defaults_and_other_prefixes_are_ignored(door: Any) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=door.stack.bucket, Key="prompts/cat.txt", Body="一只小猫在月光下奔跑".encode())
    s3.put_object(Bucket=door.stack.bucket, Key="videos/x.txt", Body=b"nope")
    intake_app.lambda_handler(s3_event(door.stack.bucket, "prompts/cat.txt", None), CTX)
    intake_app.lambda_handler(s3_event(door.stack.bucket, "videos/x.txt", None), CTX)
    [only] = executions(door)
    assert only["request"] == {
        "prompt": "一只小猫在月光下奔跑",
        "size": "1280*720",
        "duration": 5,
        "audio": False,
        "watermark": False,
        "model": "pixverse/pixverse-v5.6-t2v",
    }


def test_not_utf8_file_is_reported(door: Any) -> None:
    boto3.client("s3").put_object(Bucket=door.stack.bucket, Key="prompts/bad.txt", Body=b"\xff\xfe\xfa")
    report = intake_app.lambda_handler(s3_event(door.stack.bucket, "prompts/bad.txt", None), CTX)
    assert report["started"] == [] and len(report["rejected"]) == 1
    assert "not UTF-8" in door.stack.job(report["rejected"][0])["error_message"]


def test_eventbridge_event_starts_one_job_per_event_id(door: Any) -> None:
    event = load_event("intake_eventbridge.json")
    first = intake_app.lambda_handler(event, CTX)
    second = intake_app.lambda_handler(event, CTX)
    assert len(first["started"]) == 1 and second["duplicates"] == first["started"]
    [started] = executions(door)
    assert started["source"] == "eventbridge" and started["request"]["audio"] is True


def test_invalid_eventbridge_request_is_recorded(door: Any) -> None:
    event = {**load_event("intake_eventbridge.json"), "id": "evt-bad", "detail": {"prompt": "", "seed": -1}}
    report = intake_app.lambda_handler(event, CTX)
    job = door.stack.job(report["rejected"][0])
    assert job["status"] == "FAILED" and "seed" in job["error_message"] and "prompt" in job["error_message"]
    assert executions(door) == []


def test_concurrent_submits_of_one_job_create_one_task(door: Any) -> None:
    event = {**load_event("submit.json"), "request": {"prompt": "same job", "size": "640*360"}}
    results: list[Any] = []

    def submit() -> None:
        for _ in range(20):  # the state machine's Retry on CreateInProgressError
            try:
                results.append(submit_app.lambda_handler(event, CTX)["task_id"])
                return
            except Exception as exc:
                if type(exc).__name__ != "CreateInProgressError":
                    raise
                threading.Event().wait(0.1)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert door.emu.create_count() == 1


def test_budget_refuses_exactly_at_its_limit_under_concurrency(door: Any) -> None:
    repo = JobsRepository(door.stack.table)
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    ids = [f"job-budget-{i}" for i in range(12)]
    for job_id in ids:
        repo.create_if_absent(job_id, request={}, source="t", origin={}, now=now, deadline_at=now)
    outcomes: dict[str, str] = {}

    def charge(job_id: str) -> None:
        try:
            repo.charge_budget(job_id, day="2026-11-23", seconds=5, cap=30, now=now)
            outcomes[job_id] = "ok"
        except BudgetExceededError:
            outcomes[job_id] = "refused"

    threads = [threading.Thread(target=charge, args=(j,)) for j in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert list(outcomes.values()).count("ok") == 6

    def used() -> int:
        item = repo._table.get_item(Key={"pk": "budget#2026-11-23"}, ConsistentRead=True)["Item"]
        return int(item["used_seconds"])  # type: ignore[arg-type]

    assert used() == 30
    repo.charge_budget(
        ids[0] if outcomes[ids[0]] == "ok" else next(j for j in ids if outcomes[j] == "ok"),
        day="2026-11-23",
        seconds=5,
        cap=30,
        now=now,
    )  # charging a job twice is a no-op
    assert used() == 30


def test_budget_exceeded_ends_the_job_without_a_provider_call(
    door: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAILY_BUDGET_SECONDS", "4")
    wiring.provider_deps.cache_clear()
    with pytest.raises(BudgetExceededError):
        submit_app.lambda_handler(load_event("submit.json"), CTX)
    assert door.emu.create_count() == 0
