"""The REST API handler against moto (real HTTP) and the DashScope emulator.

Events come from the one corpus (events/api_*.json). The state machine is a trivial Pass machine
that moto never runs: these tests check what the API records, starts, stops and announces.
"""

from __future__ import annotations

import base64
import importlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import httpx
import pytest
from t2v.adapters.jobs_repo import JobsRepository
from t2v.dashscope import DashScopeClient
from t2v.jobs import JobStatus, derive_job_id
from t2v.request import VideoRequest

from tests.conftest import lambda_context, load_event

app_module = importlib.import_module("functions.api.app")

CTX = lambda_context("api", request_id="req-int")
GOOD = {"prompt": "一只小猫在月光下奔跑", "size": "640*360", "duration": 5}


@pytest.fixture
def api(stack: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"videos-{uuid.uuid4().hex[:8]}",
        # A long Wait keeps executions RUNNING whether or not moto executes state machines in this process.
        definition=json.dumps(
            {"StartAt": "Go", "States": {"Go": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        ),
        roleArn="arn:aws:iam::123456789012:role/state-machine",
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", emulator.base_url)
    app_module._deps.cache_clear()
    yield SimpleNamespace(
        stack=stack, emu=emulator, sfn=sfn, machine=machine, repo=JobsRepository(stack.table)
    )
    app_module._deps.cache_clear()


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = app_module.lambda_handler(event, CTX)
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], headers, json.loads(response["body"])


def post(
    body: Any = None, *, key: str | None = None, raw: str | None = None
) -> tuple[int, dict[str, Any], Any]:
    event = load_event("api_post_videos.json")
    if body is not None or raw is not None:
        event["body"] = raw if raw is not None else json.dumps(body, ensure_ascii=False)
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Idempotency-Key")
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    return call(event)


def request(method: str, path: str, query: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    event = load_event("api_get_video.json")
    event.update(
        httpMethod=method,
        path=path,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()} or None,
    )
    return call(event)


def executions(api: SimpleNamespace) -> list[dict[str, Any]]:
    return list(api.sfn.list_executions(stateMachineArn=api.machine)["executions"])


def wait_for(client: DashScopeClient, task_id: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while client.get_task(task_id).status != status:
        assert time.monotonic() < deadline, f"task never reached {status}"
        time.sleep(0.1)


def job_with_task(
    api: SimpleNamespace, *, status: JobStatus, running: bool
) -> tuple[str, str, DashScopeClient]:
    """A job started through the API whose provider task exists in the emulator and is recorded."""
    api.emu.config.pending_seconds, api.emu.config.running_seconds = (0.0, 60.0) if running else (60.0, 60.0)
    client = DashScopeClient(api.stack.api_key, base_url=api.emu.base_url)
    created = client.create_task(VideoRequest(prompt="a cat under the moon", size="640*360"))
    wait_for(client, created.task_id, "RUNNING" if running else "PENDING")
    job_id = post(GOOD)[2]["job_id"]
    now = datetime.now(UTC)
    assert api.repo.record_task(job_id, task_id=created.task_id, request_id=created.request_id, now=now)
    assert api.repo.transition(job_id, status, now=now)
    return job_id, created.task_id, client


# -- POST ----------------------------------------------------------------------------------------


def test_post_from_the_event_corpus_records_the_job_and_starts_one_execution(api: SimpleNamespace) -> None:
    status, headers, body = call(load_event("api_post_videos.json"))

    job_id = derive_job_id("api", "3f1c2d9e-7a4b-4c59-9e2f-0b6a1d5c8e71")
    assert status == 202
    assert body == {"job_id": job_id, "status": "ACCEPTED", "links": {"self": f"/videos/{job_id}"}}
    assert headers["Location"] == f"/videos/{job_id}"
    record = api.stack.job(job_id)
    assert record["status"] == "ACCEPTED"
    assert record["origin"]["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    [execution] = executions(api)
    assert execution["name"] == job_id
    started = json.loads(api.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["request"]["seed"] == 42
    assert (started["job_id"], started["source"], started["start_delay_seconds"]) == (job_id, "api", 0)
    # GET works at once
    assert request("GET", f"/videos/{job_id}")[2]["status"] == "ACCEPTED"


def test_same_idempotency_key_twice_is_one_job_and_one_execution(api: SimpleNamespace) -> None:
    first = post(GOOD, key="retry-me")
    second = post(GOOD, key="retry-me")
    conflict = post({**GOOD, "prompt": "a different video"}, key="retry-me")

    assert first == second
    assert first[0] == 202
    assert [e["name"] for e in executions(api)] == [first[2]["job_id"]]
    assert (conflict[0], conflict[2]["error"]["code"]) == (409, "IdempotencyKeyReused")


@pytest.mark.parametrize(
    ("body", "raw", "field"),
    [
        ({**GOOD, "size": "1920*1088"}, None, "size"),
        ({**GOOD, "size": "1920*1080", "duration": 10}, None, "duration"),
        ({**GOOD, "seed": 2_147_483_648}, None, "seed"),
        ({**GOOD, "prompt": "a" * 2049}, None, "prompt"),
        ({**GOOD, "prompt": ""}, None, "prompt"),
        ({**GOOD, "negative_prompt": "blur"}, None, "negative_prompt"),
        (None, "prompt=a cat", "body"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(
    api: SimpleNamespace, body: Any, raw: str | None, field: str
) -> None:
    status, _, answer = post(body, raw=raw)

    assert status == 400
    assert [f["field"] for f in answer["error"]["fields"]] == [field]
    assert executions(api) == []
    assert api.emu.create_count() == 0


# -- GET -----------------------------------------------------------------------------------------


def test_get_unknown_job_is_404(api: SimpleNamespace) -> None:
    status, _, body = request("GET", "/videos/job-00000000000000000000000000000000")
    assert (status, body["error"]["code"]) == (404, "NotFound")


def test_get_succeeded_job_gives_the_s3_location_and_a_working_presigned_url(api: SimpleNamespace) -> None:
    # Given a job that finished and its video in the bucket
    now = datetime.now(UTC)
    job_id = "job-succeeded-0001"
    key = f"videos/{job_id}.mp4"
    boto3.client("s3").put_object(Bucket=api.stack.bucket, Key=key, Body=b"\x00\x00\x00\x18ftypmp42video")
    api.repo.create_if_absent(job_id, request=GOOD, source="api", origin={}, now=now, deadline_at=now)
    api.repo.record_task(job_id, task_id="task-1", request_id="rq-1", now=now)
    api.repo.transition(job_id, JobStatus.DOWNLOADING, now=now)
    api.repo.transition(
        job_id,
        JobStatus.SUCCEEDED,
        now=now,
        fields={"s3_bucket": api.stack.bucket, "s3_key": key, "bytes": 21},
    )

    status, _, body = request("GET", f"/videos/{job_id}")

    assert status == 200
    assert body["status"] == "SUCCEEDED"
    assert body["task_id"] == "task-1"
    assert [h["status"] for h in body["history"]] == ["ACCEPTED", "SUBMITTED", "DOWNLOADING", "SUCCEEDED"]
    assert body["video"]["uri"] == f"s3://{api.stack.bucket}/{key}"
    assert body["video"]["expires_in"] == 900
    downloaded = httpx.get(body["video"]["url"])
    assert downloaded.status_code == 200
    assert downloaded.content.startswith(b"\x00\x00\x00\x18ftyp")


def test_list_filters_by_status_and_paginates(api: SimpleNamespace) -> None:
    start = datetime.now(UTC)
    for n in range(7):
        at = start + timedelta(seconds=n)
        api.repo.create_if_absent(
            f"job-list-{n}", request=GOOD, source="api", origin={}, now=at, deadline_at=at
        )
        if n % 2:
            api.repo.transition(f"job-list-{n}", JobStatus.FAILED, now=at)

    seen: list[str] = []
    query = {"status": "FAILED", "limit": "2"}
    for _ in range(10):
        status, _, page = request("GET", "/videos", query)
        assert status == 200
        assert len(page["items"]) <= 2
        assert {item["status"] for item in page["items"]} <= {"FAILED"}
        seen += [item["job_id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        query = {**query, "cursor": page["next_cursor"]}

    assert seen == ["job-list-5", "job-list-3", "job-list-1"]
    assert request("GET", "/videos", {"status": "DONE"})[0] == 400
    assert len(request("GET", "/videos", {"limit": "100"})[2]["items"]) == 7


def forged(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize(
    "key",
    [
        {"pk": "job-x"},  # the table's key without the index's: DynamoDB refuses the start key
        {"a": "b"},
        {"pk": "job-x", "kind": "job", "created_at": "2026-01-01T00:00:00.000Z", "extra": "x"},
        {"pk": "job-x", "kind": "budget", "created_at": "2026-01-01T00:00:00.000Z"},
        {"pk": "", "kind": "job", "created_at": ""},
    ],
)
def test_a_forged_cursor_is_a_400_naming_the_cursor(api: SimpleNamespace, key: dict[str, Any]) -> None:
    api.repo.create_if_absent(
        "job-cursor",
        request=GOOD,
        source="api",
        origin={},
        now=datetime.now(UTC),
        deadline_at=datetime.now(UTC),
    )
    status, _, body = request("GET", "/videos", {"cursor": forged(key)})
    assert status == 400, body
    assert "cursor" in json.dumps(body)


# -- DELETE --------------------------------------------------------------------------------------


def test_cancel_accepted_job_stops_it_and_announces_canceled_once(api: SimpleNamespace) -> None:
    job_id = post(GOOD)[2]["job_id"]

    status, _, body = request("DELETE", f"/videos/{job_id}")
    again = request("DELETE", f"/videos/{job_id}")

    assert (status, body["status"]) == (200, "CANCELED")
    assert api.stack.job(job_id)["status"] == "CANCELED"
    [execution] = executions(api)
    assert execution["status"] == "ABORTED"
    [note] = api.stack.notifications()
    assert note["message"]["status"] == "CANCELED"
    assert note["attributes"]["status"] == "CANCELED"
    assert note["message"]["error"]["code"] == "Canceled"
    assert (again[0], again[2]["error"]["code"]) == (409, "NotCancelable")
    assert api.emu.requests() == []  # no task yet: the provider was not called


def test_cancel_pending_task_cancels_it_at_the_provider(api: SimpleNamespace) -> None:
    job_id, task_id, client = job_with_task(api, status=JobStatus.PENDING, running=False)

    status, _, body = request("DELETE", f"/videos/{job_id}")

    assert (status, body["status"]) == (200, "CANCELED")
    assert client.get_task(task_id).status == "CANCELED"
    assert [n["message"]["status"] for n in api.stack.notifications()] == ["CANCELED"]


def test_cancel_running_task_is_409_and_leaves_the_job_running(api: SimpleNamespace) -> None:
    job_id, task_id, client = job_with_task(api, status=JobStatus.RUNNING, running=True)

    status, _, body = request("DELETE", f"/videos/{job_id}")

    assert status == 409
    assert body["error"]["code"] == "NotCancelable"
    assert "RUNNING" in body["error"]["message"]
    assert api.stack.job(job_id)["status"] == "RUNNING"
    assert client.get_task(task_id).status == "RUNNING"
    assert [e["status"] for e in executions(api)] == ["RUNNING"]
    assert api.stack.notifications() == []


def test_cancel_terminal_job_is_409(api: SimpleNamespace) -> None:
    job_id = post(GOOD)[2]["job_id"]
    api.repo.transition(job_id, JobStatus.FAILED, now=datetime.now(UTC))

    status, _, body = request("DELETE", f"/videos/{job_id}")

    assert (status, body["error"]["code"]) == (409, "NotCancelable")
    assert "FAILED" in body["error"]["message"]
