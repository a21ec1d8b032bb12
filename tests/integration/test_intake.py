"""The intake door (S3 prompt files, EventBridge events) and the budget guard, against moto."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import json
import threading
from collections import Counter
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import boto3
import pytest
from t2v import wiring
from t2v.adapters.budget import BudgetLedger
from t2v.adapters.jobs_repo import JobsRepository
from t2v.batches import derive_batch_id
from t2v.billing import Caps
from t2v.contract import ExecutionInput
from t2v.errors import BudgetExceededError
from t2v.intake import CONTINUATION_KEY, PromptFileIncompleteError, handle_s3_records
from t2v.jobs import derive_job_id
from t2v.request import REFUSED_PREFIX_CHARS, InvalidRequestError

from tests.conftest import lambda_context, load_event

intake_app = importlib.import_module("functions.intake.app")
submit_app = importlib.import_module("functions.submit.app")
api_app = importlib.import_module("functions.api.app")
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
        "owner": "none",  # no PromptJobOwner set here: the file's jobs have no owner either
        "notification_id": f"{bad['pk']}/FAILED",
    }


OWNER = "arn:aws:iam::123456789012:user/alice"


def api_get(path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET on the REST API handler as OWNER."""
    event = load_event("api_get_video.json")
    event["requestContext"]["identity"]["userArn"] = OWNER
    event.update(
        httpMethod="GET",
        path=path,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()} or None,
    )
    response = api_app.lambda_handler(event, lambda_context("api", request_id="r"))
    return response["statusCode"], json.loads(response["body"])


def test_a_refused_line_is_the_file_owners_job_in_list_and_status(
    door: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PromptJobOwner alice and a file with one good and one bad line
    monkeypatch.setenv("JOB_OWNER", OWNER)
    wiring.intake_deps.cache_clear()
    api_app._deps.cache_clear()
    key = "prompts/mixed.jsonl"
    body = '{"prompt": "a", "size": "640*360"}\n{"prompt": "b", "duration": 7}\n'
    boto3.client("s3").put_object(Bucket=door.stack.bucket, Key=key, Body=body.encode())
    # When intake reads it
    report = intake_app.lambda_handler(s3_event(door.stack.bucket, key, None), CTX)
    # Then alice sees both lines, the refused one FAILED with the field and the rule it broke
    [bad] = report["rejected"]
    code, listed = api_get("/videos")
    assert code == 200
    assert {v["job_id"] for v in listed["items"]} == {bad, *report["started"]}
    code, view = api_get(f"/videos/{bad}")
    assert code == 200 and view["status"] == "FAILED"
    assert "duration" in view["error"]["message"] and "line 2" in view["error"]["message"]
    [note] = door.stack.notifications()
    assert note["attributes"]["owner"] == OWNER
    api_app._deps.cache_clear()


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
    repo, budget = JobsRepository(door.stack.table), BudgetLedger(door.stack.table)
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    ids = [f"job-budget-{i}" for i in range(12)]
    jobs = {
        job_id: repo.create_if_absent(job_id, request={}, source="t", origin={}, now=now, deadline_at=now)[0]
        for job_id in ids
    }
    outcomes: dict[str, str] = {}

    def charge(job_id: str) -> None:
        try:
            budget.charge_budget(jobs[job_id], day="2026-11-23", seconds=5, caps=Caps(30), now=now)
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
        item = budget._table.get_item(Key={"pk": "budget#2026-11-23"}, ConsistentRead=True)["Item"]
        return int(item["used_seconds"])  # type: ignore[arg-type]

    assert used() == 30
    charged = next(j for j in ids if outcomes[j] == "ok")
    budget.charge_budget(jobs[charged], day="2026-11-23", seconds=5, caps=Caps(30), now=now)
    assert used() == 30  # charging a job again with the job as read before its charge is a no-op
    budget.charge_budget(repo.get(charged), day="2026-11-23", seconds=5, caps=Caps(30), now=now)  # type: ignore[arg-type]
    assert used() == 30  # and so is charging it as read after


def test_budget_exceeded_ends_the_job_without_a_provider_call(
    door: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAILY_BUDGET_SECONDS", "4")
    wiring.provider_deps.cache_clear()
    with pytest.raises(BudgetExceededError):
        submit_app.lambda_handler(load_event("submit.json"), CTX)
    assert door.emu.create_count() == 0


# -- hostile prompt files (issue 12): every line one job that ends, one notification, bounded records


def put_file(door: Any, key: str, body: bytes) -> dict[str, Any]:
    """Upload a prompt file to the versioned bucket and return the S3 event that names its version."""
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=door.stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=door.stack.bucket, Key=key, Body=body)["VersionId"]
    return s3_event(door.stack.bucket, key, version)


def line_job(door: Any, event: dict[str, Any], line: int) -> str:
    obj = event["Records"][0]["s3"]["object"]
    return derive_job_id("s3", door.stack.bucket, unquote_plus(obj["key"]), obj["versionId"], str(line))


def notified_jobs(door: Any) -> Counter[str]:
    return Counter(str(n["message"]["job_id"]) for n in door.stack.notifications())


def assert_refused_once(door: Any, job_id: str, notes: Counter[str], reason: str) -> dict[str, Any]:
    job = door.stack.job(job_id)
    assert job is not None, f"no record for {job_id}"
    assert job["status"] == "FAILED" and job["error_code"] == "InvalidRequest", job
    assert reason in job["error_message"]
    assert notes[job_id] == 1
    # Bounded: a digest, a size and a prefix of what was refused, never the body itself.
    assert set(job["request"]) == {"sha256", "bytes", "prefix"}
    assert len(job["request"]["prefix"]) <= REFUSED_PREFIX_CHARS
    assert len(json.dumps(job, default=str)) < 8 * 1024
    return job


@pytest.mark.parametrize("size", [300_000, 600_000])
def test_an_oversized_txt_prompt_is_refused_once_and_announced(door: Any, size: int) -> None:
    # Given a .txt file far over the prompt limit, yet under the 1 MiB file cap (SNS takes 256 KB,
    # a DynamoDB item 400 KB: echoing the prompt lost the notification, then the record itself)
    text = ("一只小猫在月光下奔跑 " * (size // 30 + 1))[: size // 3]
    event = put_file(door, f"prompts/big-{size}.txt", text.encode())

    report = intake_app.lambda_handler(event, CTX)

    job_id = line_job(door, event, 0)
    assert report["rejected"] == [job_id]
    job = assert_refused_once(door, job_id, notified_jobs(door), "prompt has")
    assert job["request"]["bytes"] == len(text.encode())
    assert job["request"]["sha256"] == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_invalid_json_and_the_lines_after_them_run(door: Any, constant: str) -> None:
    body = "\n".join(
        [
            '{"prompt": "before", "size": "640*360"}',
            f'{{"prompt": "bad number", "seed": {constant}}}',
            '{"prompt": "after", "size": "640*360"}',
        ]
    )
    event = put_file(door, "prompts/numbers.jsonl", body.encode())

    report = intake_app.lambda_handler(event, CTX)

    assert sorted(i["request"]["prompt"] for i in executions(door)) == ["after", "before"]
    assert report["rejected"] == [line_job(door, event, 2)]
    assert_refused_once(door, line_job(door, event, 2), notified_jobs(door), "invalid JSON")


def test_a_huge_first_line_never_keeps_the_next_line_from_running(door: Any) -> None:
    huge = json.dumps({"prompt": "x" * 350_000, "size": "640*360"})
    event = put_file(door, "prompts/huge-first.jsonl", f'{huge}\n{{"prompt": "second"}}\n'.encode())

    intake_app.lambda_handler(event, CTX)

    assert [i["request"]["prompt"] for i in executions(door)] == ["second"]
    assert_refused_once(door, line_job(door, event, 1), notified_jobs(door), "prompt has 350000 characters")


def test_deep_nesting_is_refused_as_invalid_json_before_dynamodb_sees_it(door: Any) -> None:
    deep = '{"prompt": "deep", "extra": ' + "[" * 40 + "]" * 40 + "}"
    event = put_file(door, "prompts/deep.jsonl", f'{deep}\n{{"prompt": "flat"}}\n'.encode())

    intake_app.lambda_handler(event, CTX)

    assert [i["request"]["prompt"] for i in executions(door)] == ["flat"]
    assert_refused_once(door, line_job(door, event, 1), notified_jobs(door), "nested more than 32 levels")


def test_a_long_refused_value_is_not_echoed_into_the_record(door: Any) -> None:
    line = json.dumps({"prompt": "ok", "size": "9" * 200_000, "x" * 100_000: 1})
    event = put_file(door, "prompts/echo.jsonl", line.encode())

    intake_app.lambda_handler(event, CTX)

    job = assert_refused_once(door, line_job(door, event, 1), notified_jobs(door), "size")
    assert len(job["error_message"]) <= 1000


def deps_for(door: Any, **changes: Any) -> Any:
    return dataclasses.replace(wiring.intake_deps(), **changes)


def two_files(door: Any, first: tuple[str, bytes], second: tuple[str, bytes]) -> dict[str, Any]:
    """One S3 notification naming two uploaded prompt files (S3 may batch records)."""
    events = [put_file(door, key, body) for key, body in (first, second)]
    return {"Records": [e["Records"][0] for e in events]}


def test_one_files_failure_never_stops_the_others_and_the_retry_finishes_it(door: Any) -> None:
    event = two_files(
        door,
        ("prompts/flaky.txt", b"a flaky fox"),
        ("prompts/steady.json", json.dumps({"prompt": "a steady cat", "size": "640*360"}).encode()),
    )
    real = wiring.intake_deps()
    broken = line_job(door, {"Records": [event["Records"][0]]}, 0)
    steady = line_job(door, {"Records": [event["Records"][1]]}, 0)
    calls: list[str] = []

    def flaky_record(execution: ExecutionInput) -> bool:
        calls.append(execution.job_id)
        if execution.job_id == broken and calls.count(broken) == 1:
            raise ConnectionError("DynamoDB went away for a moment")
        return real.record(execution)

    deps = deps_for(door, record=flaky_record)
    with pytest.raises(PromptFileIncompleteError, match=r"prompts/flaky\.txt"):
        handle_s3_records(event, deps)
    assert [i["request"]["prompt"] for i in executions(door)] == ["a steady cat"]

    again = handle_s3_records(event, deps)  # Lambda's retry of the failed invocation
    assert again.started == [broken] and again.duplicates == [steady]
    assert sorted(i["request"]["prompt"] for i in executions(door)) == ["a flaky fox", "a steady cat"]


# -- batches (issue 24): a .jsonl opens its batch; intake reads none of its lines


@pytest.fixture
def batch_door(door: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The door with the stack's batch state machine (a Pass machine: what it runs is not intake's)."""
    arn = door.sfn.create_state_machine(
        name=f"batch-{door.stack.table}",
        roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    monkeypatch.setenv("BATCH_STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("JOB_OWNER", OWNER)
    wiring.intake_deps.cache_clear()
    yield SimpleNamespace(door=door, stack=door.stack, sfn=door.sfn, arn=arn)
    wiring.intake_deps.cache_clear()


def batch_executions(batch_door: Any) -> list[tuple[str, dict[str, Any]]]:
    listed = batch_door.sfn.list_executions(stateMachineArn=batch_door.arn)["executions"]
    return [
        (e["name"], json.loads(batch_door.sfn.describe_execution(executionArn=e["executionArn"])["input"]))
        for e in listed
    ]


def batch_items(stack: Any) -> list[dict[str, Any]]:
    from t2v.adapters.jobs_table import plain

    table = boto3.resource("dynamodb").Table(stack.table)
    items = table.scan(ConsistentRead=True)["Items"]
    return [plain(i) for i in items if str(i["pk"]).startswith("batch#")]


def test_a_jsonl_upload_opens_exactly_one_batch_and_starts_no_line(batch_door: Any) -> None:
    # Given a .jsonl of two good lines and a bad one, in a versioned bucket
    body = '{"prompt": "a", "size": "640*360"}\n{"prompt": "b", "seed": NaN}\n{"prompt": "c"}\n'
    event = put_file(batch_door.door, "prompts/my batch.jsonl", body.encode())
    version = event["Records"][0]["s3"]["object"]["versionId"]
    expected = derive_batch_id(batch_door.stack.bucket, "prompts/my batch.jsonl", version)

    # When S3 delivers the notification twice
    first = intake_app.lambda_handler(event, CTX)
    second = intake_app.lambda_handler(event, CTX)

    # Then both name the same one batch, and nothing else happened at intake
    assert first["batches"] == [expected] and second["batches"] == [expected]
    assert first["started"] == first["rejected"] == second["started"] == second["rejected"] == []
    assert batch_executions(batch_door) == [(expected, {"batch_id": expected})]
    assert executions(batch_door.door) == []  # no line's video workflow
    [item] = batch_items(batch_door.stack)
    assert item["pk"] == f"batch#{expected}" and item["status"] == "READING"
    assert item["batch_owner"] == OWNER and item["source"] == "s3" and item["execution"] == expected
    assert item["file"] == {
        "bucket": batch_door.stack.bucket,
        "key": "prompts/my batch.jsonl",
        "version": version,
        "version_id": version,
    }
    assert batch_door.stack.job(line_job(batch_door.door, event, 2)) is None  # the bad line: not read
    assert batch_door.stack.notifications() == []


def test_a_new_version_of_the_same_key_is_a_new_batch(batch_door: Any) -> None:
    one = put_file(batch_door.door, "prompts/again.jsonl", b'{"prompt": "a"}\n')
    two = put_file(batch_door.door, "prompts/again.jsonl", b'{"prompt": "a"}\n')
    ids = [intake_app.lambda_handler(e, CTX)["batches"][0] for e in (one, two)]
    assert len(set(ids)) == 2
    assert sorted(name for name, _ in batch_executions(batch_door)) == sorted(ids)


@pytest.mark.parametrize(
    ("key", "body", "prompt"),
    [
        ("prompts/one.txt", b"a lone fox", "a lone fox"),
        ("prompts/one.json", json.dumps({"prompt": "a lone cat", "size": "640*360"}).encode(), "a lone cat"),
    ],
)
def test_txt_and_json_still_start_their_one_job_with_batches_on(
    batch_door: Any, key: str, body: bytes, prompt: str
) -> None:
    event = put_file(batch_door.door, key, body)
    report = intake_app.lambda_handler(event, CTX)
    again = intake_app.lambda_handler(event, CTX)
    job_id = line_job(batch_door.door, event, 0)
    assert report["started"] == [job_id] and report["batches"] == []
    assert again["started"] == [] and again["duplicates"] == [job_id]
    [only] = executions(batch_door.door)
    assert only["job_id"] == job_id and only["request"]["prompt"] == prompt
    assert batch_executions(batch_door) == [] and batch_items(batch_door.stack) == []
    job = batch_door.stack.job(job_id)
    assert job is not None and job["status"] == "ACCEPTED" and job["owner"] == OWNER


def test_a_continuation_from_an_earlier_release_opens_the_files_batch(batch_door: Any) -> None:
    # Given a .jsonl an earlier release's intake was handing on when the stack was updated
    event = put_file(batch_door.door, "prompts/long.jsonl", b'{"prompt": "a"}\n{"prompt": "b"}\n')
    version = event["Records"][0]["s3"]["object"]["versionId"]
    body = {
        "bucket": batch_door.stack.bucket,
        "key": "prompts/long.jsonl",
        "version": version,
        "version_id": version,
        "next_line": 2,
    }
    # When the continuation arrives, before and after the file's own notification
    handed = intake_app.lambda_handler({CONTINUATION_KEY: body}, CTX)
    notified = intake_app.lambda_handler(event, CTX)
    # Then both open the file's one batch, and no line runs at intake
    expected = derive_batch_id(batch_door.stack.bucket, "prompts/long.jsonl", version)
    assert handed["batches"] == [expected] and notified["batches"] == [expected]
    assert handed["started"] == [] and handed["rejected"] == []
    assert [name for name, _ in batch_executions(batch_door)] == [expected]
    assert executions(batch_door.door) == []


def test_a_continuation_outside_the_prompt_prefix_or_malformed_opens_nothing(batch_door: Any) -> None:
    outside = {"bucket": batch_door.stack.bucket, "key": "videos/x.jsonl", "version": "v", "version_id": None}
    assert intake_app.lambda_handler({CONTINUATION_KEY: outside}, CTX)["batches"] == []
    with pytest.raises(InvalidRequestError, match="continuation"):
        intake_app.lambda_handler({CONTINUATION_KEY: {"bucket": "b"}}, CTX)
    assert batch_executions(batch_door) == [] and batch_items(batch_door.stack) == []


def test_t2v_upload_puts_files_under_the_prompt_prefix_and_their_refused_lines_list(
    door: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.credentials import Credentials
    from t2v_client import Place, SandboxIdentity, Target
    from t2v_sandbox import cli, commands_user

    # Given the sandbox's prompt bucket (moto), whose PromptJobOwner is the identity alice
    monkeypatch.setenv("JOB_OWNER", OWNER)
    wiring.intake_deps.cache_clear()
    api_app._deps.cache_clear()
    keys = Credentials("testing", "testing")
    place = Place(
        target=Target("http://127.0.0.1:9/Prod", "us-east-1", keys),
        session=boto3.Session(),
        endpoint_url=None,  # AWS_ENDPOINT_URL points boto3 at moto
        outputs={"OutputBucketName": door.stack.bucket},
        parameters={"InputPrefix": "prompts/", "PromptJobOwner": OWNER},
        sandbox=True,
        identities={"alice": SandboxIdentity("alice", keys, OWNER)},
    )
    monkeypatch.setattr(commands_user, "resolve_place", lambda *_args, **_kwargs: place)
    batch = tmp_path / "my batch.jsonl"
    batch.write_text('{"prompt": "a fox"}\n{"prompt": "a cat", "size": "1*1"}\n')
    # When the user uploads it
    args = cli.build_parser().parse_args(["upload", str(batch)])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    # Then the key it wrote is named, and how to watch the jobs
    assert out.strip() == f"uploaded s3://{door.stack.bucket}/prompts/my-batch.jsonl"
    assert f"PromptJobOwner ({OWNER})" in err and "`t2v batch list --as alice`" in err
    body = boto3.client("s3").get_object(Bucket=door.stack.bucket, Key="prompts/my-batch.jsonl")["Body"]
    assert body.read() == batch.read_bytes()
    # and once intake has read it, the refused line is the owner's, with the field and its rule
    report = intake_app.lambda_handler(s3_event(door.stack.bucket, "prompts/my-batch.jsonl", None), CTX)
    [bad] = report["rejected"]
    _, listed = api_get("/videos", {"status": "FAILED"})
    [refused] = listed["items"]
    assert refused["job_id"] == bad and refused["origin"]["line"] == 2
    assert "size" in refused["error"]["message"]
    api_app._deps.cache_clear()
