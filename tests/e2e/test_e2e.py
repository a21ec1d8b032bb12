"""End to end: the real template.yaml deployed in the sandbox, driven through its three front doors.

One sandbox for the module (moto + the DashScope emulator, Wait/Retry sleeps scaled down). Every
test uses its own prompt, so the emulator's faults, its task list and the notifications can be
told apart. What is asserted is what a user sees: the status a job ends in, the MP4 in S3, the
SNS message a subscriber receives, and how many tasks the provider was asked to create.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from t2v.times import iso
from t2v_client import ApiClient, Target
from t2v_sandbox.user_sandbox import (
    Subscriber,
    UserSandbox,
    config_for,
    put_video_request,
    topic_arn,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
# The real template; T2V_E2E_TEMPLATE points the tier at a variant (e.g. while reviewing a change).
TEMPLATE = Path(os.environ.get("T2V_E2E_TEMPLATE") or ROOT / "template.yaml")
JOB_TIMEOUT = 45.0  # a job takes ~3-6 s here; generous for a loaded 2-core machine
SMALL = {"size": "640*360", "duration": 5}
FAULTS = {
    "seed": 1,
    "rules": [
        {
            "kind": "task_failed",
            "prompt_contains": "e2e-task-fails",
            "code": "InternalError.Algo",
            "message": "Inference failed.",
        },
        {
            "endpoint": "create",
            "kind": "error",
            "prompt_contains": "e2e-inspection",
            "code": "DataInspectionFailed",
            "message": "Input data may contain inappropriate content.",
        },
    ],
}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp("e2e-sandbox"),
        overrides={"PollIntervalSeconds": "1"},
        pending_seconds=0.5,
        running_seconds=1.0,
        write_endpoints=False,
    )
    with UserSandbox(config) as sandbox:
        httpx.post(f"{sandbox.endpoints['emulator_root_url']}/admin/faults", json=FAULTS).raise_for_status()
        yield sandbox


@pytest.fixture(scope="module")
def outcomes(sb: UserSandbox) -> Subscriber:
    return Subscriber.attach(sb, topic_arn(sb))


@pytest.fixture(scope="module")
def api(sb: UserSandbox) -> Iterator[ApiClient]:
    url = sb.endpoints.get("api_url")
    if not url:
        pytest.fail("template.yaml declares no REST API: the API door cannot be tested")
    creds = sb.session.get_credentials()
    with ApiClient(Target(str(url), sb.config.region, creds.get_frozen_credentials())) as client:
        yield client


# --- helpers: the job table, S3, the emulator


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


def table(sb: UserSandbox) -> Any:
    return sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(sb.outputs["JobsTableName"])


def job(sb: UserSandbox, job_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = table(sb).get_item(Key={"pk": job_id}).get("Item")
    return item


def jobs_where(sb: UserSandbox, predicate: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table(sb).scan(**kwargs)
        items.extend(i for i in page["Items"] if i.get("kind") == "job" and predicate(i))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def wait_terminal(sb: UserSandbox, job_id: str, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found = job(sb, job_id)
        if found and found["status"] in {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}:
            return found
        return None

    return wait_until(ended, timeout=timeout, what=f"job {job_id} ending")


def tasks_for(sb: UserSandbox, prompt: str) -> list[dict[str, Any]]:
    return [t for t in sb.emulator.tasks() if t["prompt"] == prompt]


def put_request(sb: UserSandbox, detail: Any, *, source: str | None = None) -> str:
    """`Video Generation Requested` on the stack's bus; returns the job id it maps to (by event id)."""
    from t2v.jobs import derive_job_id

    answer = put_video_request(sb, detail, source=source)
    assert answer["FailedEntryCount"] == 0, answer
    return derive_job_id("eventbridge", answer["Entries"][0]["EventId"])


def assert_playable_mp4(data: bytes, *, width: int, height: int, seconds: float) -> None:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 24
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
        assert container.duration is not None
        assert abs(container.duration / av.time_base - seconds) < 0.5
        assert sum(1 for _ in container.decode(stream)) >= 24 * seconds - 1


def s3_object(sb: UserSandbox, bucket: str, key: str) -> bytes:
    body: bytes = sb.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def one_notification(outcomes: Subscriber, job_id: str) -> dict[str, Any]:
    messages = outcomes.wait_for_job(job_id)
    time.sleep(0.3)  # a duplicate would follow right after the first
    messages = outcomes.for_job(job_id)
    assert len(messages) == 1, messages
    message: dict[str, Any] = messages[0]["message"]
    return message


# --- EventBridge door


def test_eventbridge_request_succeeds_with_video_and_one_notification(
    sb: UserSandbox, outcomes: Subscriber
) -> None:
    prompt = unique("a red kite over the sea")
    job_id = put_request(sb, {"prompt": prompt, **SMALL})

    record = wait_terminal(sb, job_id)

    assert record["status"] == "SUCCEEDED", record
    assert record["source"] == "eventbridge"
    assert_playable_mp4(
        s3_object(sb, record["s3_bucket"], record["s3_key"]), width=640, height=360, seconds=5
    )
    message = one_notification(outcomes, job_id)
    assert message["status"] == "SUCCEEDED"
    assert message["video"]["uri"] == f"s3://{record['s3_bucket']}/{record['s3_key']}"
    assert len(tasks_for(sb, prompt)) == 1


def test_a_request_from_a_source_the_stack_does_not_name_starts_nothing(
    sb: UserSandbox, outcomes: Subscriber
) -> None:
    # Given anyone allowed to put events on the bus, sending the right detail-type from their own source
    prompt = unique("a forged request")
    forged = put_request(sb, {"prompt": prompt, **SMALL}, source="someone.else")
    # ... and, right behind it, a request from the source the stack names
    genuine = put_request(sb, {"prompt": unique("a genuine request"), **SMALL})

    assert wait_terminal(sb, genuine)["status"] == "SUCCEEDED"
    # Then the forged one started no job, no provider task and no notification
    assert job(sb, forged) is None
    assert tasks_for(sb, prompt) == []
    assert outcomes.for_job(forged) == []


def test_same_event_delivered_twice_creates_one_provider_task(sb: UserSandbox, outcomes: Subscriber) -> None:
    # Given one event that EventBridge delivers twice (at-least-once delivery)
    from t2v.jobs import derive_job_id

    prompt = unique("twice delivered lighthouse")
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Video Generation Requested",
        "source": "e2e.tests",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": sb.config.region,
        "resources": [],
        "detail": {"prompt": prompt, **SMALL},
    }
    intake = sb.client("lambda")
    for _ in range(2):
        intake.invoke(FunctionName=sb.physical_id("IntakeFunction"), Payload=json.dumps(event))

    record = wait_terminal(sb, derive_job_id("eventbridge", event["id"]))

    assert record["status"] == "SUCCEEDED"
    assert len(tasks_for(sb, prompt)) == 1
    one_notification(outcomes, record["pk"])


def test_invalid_eventbridge_request_is_recorded_failed_and_announced(
    sb: UserSandbox, outcomes: Subscriber
) -> None:
    prompt = unique("too long for 1080P")
    job_id = put_request(sb, {"prompt": prompt, "size": "1920*1080", "duration": 10})

    record = wait_terminal(sb, job_id)

    assert record["status"] == "FAILED"
    assert record["error_code"] == "InvalidRequest"
    assert "duration" in record["error_message"]
    message = one_notification(outcomes, job_id)
    assert message["status"] == "FAILED"
    assert "duration" in message["error"]["message"]
    assert tasks_for(sb, prompt) == []


# --- S3 door


def test_prompt_files_txt_json_and_jsonl_start_one_job_per_valid_request(
    sb: UserSandbox, outcomes: Subscriber, api: ApiClient
) -> None:
    bucket = sb.outputs["OutputBucketName"]
    txt, js, first, second = (unique(p) for p in ("txt dawn", "json dusk", "jsonl one", "jsonl two"))
    files = {
        "prompts/x.txt": txt.encode(),
        "prompts/y.json": json.dumps({"prompt": js, **SMALL}).encode(),
        "prompts/z.jsonl": "\n".join(
            [
                json.dumps({"prompt": first, **SMALL}),
                json.dumps({"prompt": "bad line", "size": "999*999"}),
                json.dumps({"prompt": second, **SMALL}),
            ]
        ).encode(),
        "prompts/月光 with spaces+plus.txt": unique("unicode key").encode(),
    }
    for key, data in files.items():
        sb.client("s3").put_object(Bucket=bucket, Key=key, Body=data)

    def started() -> dict[tuple[str, int], dict[str, Any]] | None:
        found = {
            (j["origin"]["key"], int(j["origin"]["line"])): j
            for j in jobs_where(sb, lambda i: i.get("source") == "s3" and i["origin"]["key"] in files)
        }
        return found if len(found) == 6 else None

    by_origin = wait_until(started, timeout=JOB_TIMEOUT, what="six S3 jobs recorded")
    ended = {origin: wait_terminal(sb, j["pk"]) for origin, j in by_origin.items()}

    assert {o: j["status"] for o, j in ended.items()} == {
        ("prompts/x.txt", 0): "SUCCEEDED",
        ("prompts/y.json", 0): "SUCCEEDED",
        ("prompts/z.jsonl", 1): "SUCCEEDED",
        ("prompts/z.jsonl", 2): "FAILED",
        ("prompts/z.jsonl", 3): "SUCCEEDED",
        ("prompts/月光 with spaces+plus.txt", 0): "SUCCEEDED",
    }
    # The defaults of the stack apply to a .txt file (1280*720, 5 s).
    assert ended[("prompts/x.txt", 0)]["request"]["size"] == "1280*720"
    # A .jsonl is a batch: its refused line is FAILED, named in its error, and not announced on its
    # own; the batch announces once (tests/e2e/test_batches.py)
    bad = ended[("prompts/z.jsonl", 2)]
    assert bad["status"] == "FAILED"
    assert "prompts/z.jsonl line 2" in bad["error_message"]
    assert "size" in bad["error_message"]
    assert outcomes.for_job(bad["pk"]) == []
    for prompt in (txt, js, first, second):
        assert len(tasks_for(sb, prompt)) == 1
    # The refused line is the file owner's job (PromptJobOwner: the sandbox's default caller), in
    # its status and its list, naming the field and the rule it broke
    refused = ended[("prompts/z.jsonl", 2)]["pk"]
    view = api.get(refused)
    assert (view["status"], view["origin"]["line"], view["cancellable"]) == ("FAILED", 2, False)
    assert "size" in view["error"]["message"]
    assert refused in [j["job_id"] for j in api.list(status="FAILED", limit=100)["items"]]
    assert bad["owner"] == sb.endpoints["parameters"]["PromptJobOwner"]
    batch_message = wait_until(
        lambda: (
            [m["message"] for m in outcomes.drain() if m["message"].get("batch_id") == bad["batch_id"]]
            or None
        ),
        timeout=JOB_TIMEOUT,
        what="the batch's one announcement",
    )
    assert [m["status"] for m in batch_message] == ["COMPLETED"]


# --- failures, each in its own terminal status


def test_task_failed_at_the_provider_ends_failed_with_its_code(sb: UserSandbox, outcomes: Subscriber) -> None:
    job_id = put_request(sb, {"prompt": unique("e2e-task-fails"), **SMALL})

    record = wait_terminal(sb, job_id)

    assert record["status"] == "FAILED"
    assert record["error_code"] == "InternalError.Algo"
    message = one_notification(outcomes, job_id)
    assert message["error"]["code"] == "InternalError.Algo"
    assert "video" not in message


def test_data_inspection_failure_at_create_ends_failed(sb: UserSandbox, outcomes: Subscriber) -> None:
    prompt = unique("e2e-inspection")
    job_id = put_request(sb, {"prompt": prompt, **SMALL})

    record = wait_terminal(sb, job_id)

    assert record["status"] == "FAILED"
    assert record["error_code"] == "DataInspectionFailed"
    assert one_notification(outcomes, job_id)["error"]["code"] == "DataInspectionFailed"
    assert tasks_for(sb, prompt) == []  # refused: no task exists, and none was retried into existence


def test_job_past_its_deadline_ends_timed_out(sb: UserSandbox, outcomes: Subscriber) -> None:
    # Given a job recorded with a deadline 2 s away (DeadlineSeconds is at least 60 s, a stack parameter),
    # and a provider task that stays PENDING longer than that
    from t2v.adapters.jobs_repo import JobsRepository

    prompt = unique("slow sunrise")
    job_id = f"job-e2e-deadline-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    repo = JobsRepository(
        sb.outputs["JobsTableName"], resource=sb.session.resource("dynamodb", endpoint_url=sb.moto_url)
    )
    request = {"prompt": prompt, **SMALL}
    repo.create_if_absent(
        job_id,
        request=request,
        source="e2e",
        origin={},
        now=now,
        deadline_at=now + timedelta(seconds=2),
    )
    # As if admitted just now (a deadline counts from the capacity lease, which admission sets)
    repo.update_fields(job_id, {"lease_at": iso(now)}, now=now)
    emulator = sb.emulator
    saved = emulator.config.pending_seconds
    emulator.config.pending_seconds = 30.0
    try:
        sb.client("stepfunctions").start_execution(
            stateMachineArn=sb.outputs["StateMachineArn"],
            name=job_id,
            input=json.dumps(
                {
                    "job_id": job_id,
                    "request": request,
                    "source": "e2e",
                    "origin": {},
                    "start_delay_seconds": 0,
                }
            ),
        )
        wait_until(lambda: tasks_for(sb, prompt), timeout=JOB_TIMEOUT, what="the task created")
    finally:
        emulator.config.pending_seconds = saved

    record = wait_terminal(sb, job_id)

    assert record["status"] == "TIMED_OUT"
    assert record["error_code"] == "Timeout"
    assert one_notification(outcomes, job_id)["status"] == "TIMED_OUT"


# --- API door


def test_api_request_succeeds_with_playable_mp4_and_one_notification(
    sb: UserSandbox, api: ApiClient, outcomes: Subscriber
) -> None:
    prompt = unique("一只小猫在月光下奔跑")
    accepted = api.submit({"prompt": prompt, **SMALL})
    job_id = accepted["job_id"]
    assert accepted["status"] == "ACCEPTED"

    view = api.wait(job_id, timeout=JOB_TIMEOUT, interval=0.3)

    assert view["status"] == "SUCCEEDED", view
    assert view["task_id"] == tasks_for(sb, prompt)[0]["task_id"]
    assert [h["status"] for h in view["history"]][-1] == "SUCCEEDED"
    # The presigned URL in the job view serves the very MP4 stored in S3.
    data = httpx.get(view["video"]["url"]).content
    bucket, key = view["video"]["uri"].removeprefix("s3://").split("/", 1)
    assert data == s3_object(sb, bucket, key)
    assert view["video"]["bytes"] == len(data)
    assert_playable_mp4(data, width=640, height=360, seconds=5)
    message = one_notification(outcomes, job_id)
    assert message["status"] == "SUCCEEDED"
    assert message["video"]["sha256"] == view["video"]["sha256"]
    # And it is listed among the SUCCEEDED jobs.
    listed = api.list(status="SUCCEEDED", limit=100)
    assert job_id in [item["job_id"] for item in listed["items"]]


def test_api_retries_with_one_idempotency_key_create_one_job_and_one_task(
    sb: UserSandbox, api: ApiClient
) -> None:
    prompt = unique("idempotent harbour")
    key = uuid.uuid4().hex
    first = api.submit({"prompt": prompt, **SMALL}, idempotency_key=key)
    second = api.submit({"prompt": prompt, **SMALL}, idempotency_key=key)

    assert first["job_id"] == second["job_id"]
    assert api.wait(first["job_id"], timeout=JOB_TIMEOUT, interval=0.3)["status"] == "SUCCEEDED"
    assert len(tasks_for(sb, prompt)) == 1
    # The same key with another body is refused, not silently merged.
    reused = api.call("POST", "/videos", json_body={"prompt": "other"}, headers={"Idempotency-Key": key})
    assert reused.status == 409


def test_invalid_api_request_is_400_and_creates_nothing(sb: UserSandbox, api: ApiClient) -> None:
    prompt = unique("bad size")
    before = len(jobs_where(sb, lambda _: True))

    answer = api.call("POST", "/videos", json_body={"prompt": prompt, "size": "999*999", "duration": 5})

    assert answer.status == 400
    assert answer.body["error"]["code"] == "InvalidRequest"
    assert [f["field"] for f in answer.body["error"]["fields"]] == ["size"]
    assert len(jobs_where(sb, lambda _: True)) == before
    assert tasks_for(sb, prompt) == []


def test_unsigned_api_request_is_refused(sb: UserSandbox) -> None:
    answer = httpx.post(f"{sb.endpoints['api_url']}/videos", json={"prompt": "no signature"})
    assert answer.status_code == 403


def test_cancel_while_pending_ends_canceled_and_second_cancel_is_409(
    sb: UserSandbox, api: ApiClient, outcomes: Subscriber
) -> None:
    # Given a job whose provider task stays PENDING for a long time
    prompt = unique("a cancelled parade")
    emulator = sb.emulator
    saved = emulator.config.pending_seconds
    emulator.config.pending_seconds = 60.0
    try:
        job_id = api.submit({"prompt": prompt, **SMALL})["job_id"]
        wait_until(lambda: api.get(job_id)["status"] == "PENDING", timeout=JOB_TIMEOUT, what="job PENDING")
    finally:
        emulator.config.pending_seconds = saved

    # When the user cancels it
    canceled = api.cancel(job_id)

    assert canceled["status"] == "CANCELED"
    [task] = tasks_for(sb, prompt)
    assert task["canceled"] is True
    assert one_notification(outcomes, job_id)["status"] == "CANCELED"
    again = api.call("DELETE", f"/videos/{job_id}")
    assert again.status == 409
    assert again.body["error"]["code"] == "NotCancelable"
    # The workflow was stopped: the job stays CANCELED.
    time.sleep(0.5)
    assert api.get(job_id)["status"] == "CANCELED"


def test_unknown_job_is_404(api: ApiClient) -> None:
    assert api.call("GET", "/videos/job-does-not-exist").status == 404


# --- the sweeper (scheduled)


def test_the_scheduled_sweeper_starts_a_job_recorded_but_never_started(
    sb: UserSandbox, outcomes: Subscriber
) -> None:
    # Given a job the API recorded ten minutes ago and then died before starting (no execution)
    from t2v.adapters.jobs_repo import JobsRepository

    prompt = unique("orphan harbour")
    job_id = f"job-e2e-orphan-{uuid.uuid4().hex[:12]}"
    then = datetime.now(UTC) - timedelta(minutes=10)
    repo = JobsRepository(
        sb.outputs["JobsTableName"], resource=sb.session.resource("dynamodb", endpoint_url=sb.moto_url)
    )
    repo.create_if_absent(
        job_id,
        request={"prompt": prompt, **SMALL},
        source="api",
        origin={},
        now=then,
        deadline_at=then + timedelta(hours=2),
    )

    # When the template's schedule fires the sweeper
    assert sb.fire_schedules() >= 1

    # Then the job runs to its end through its own execution, announced once
    record = wait_terminal(sb, job_id)
    assert record["status"] == "SUCCEEDED"
    assert one_notification(outcomes, job_id)["status"] == "SUCCEEDED"
    assert len(tasks_for(sb, prompt)) == 1
