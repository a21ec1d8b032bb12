"""Batches end to end (issue 24): the real template's batch state machine (a Distributed Map reading
JSON Lines in groups, its children starting the video workflow per line), against the emulator.

What a user meets: the batch's status and counts, the results file (one line per input line), the
one batch announcement (and none per line), the tasks the provider was asked to create, and a
cancel after which no line starts.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from t2v_client.api import ApiClient
from t2v_client.target import Target
from t2v_sandbox.user_sandbox import Subscriber, UserSandbox, config_for, topic_arn, wait_until

from tests.e2e.test_e2e import TEMPLATE, table

CEILING = 3  # the governor's ceiling: a batch's lines queue for capacity, as a team's first batch would
SMALL = {"size": "640*360", "duration": 5}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp("batch-sandbox"),
        overrides={"PollIntervalSeconds": "1", "ProviderMaxTasksInFlight": str(CEILING)},
        pending_seconds=0.5,
        running_seconds=1.0,
        write_endpoints=False,
    )
    with UserSandbox(config) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def outcomes(sb: UserSandbox) -> Subscriber:
    return Subscriber.attach(sb, topic_arn(sb), name="t2v-batch-outcomes")


@pytest.fixture(scope="module")
def api(sb: UserSandbox) -> Iterator[ApiClient]:
    creds = sb.session.get_credentials()
    with ApiClient(
        Target(str(sb.endpoints["api_url"]), sb.config.region, creds.get_frozen_credentials())
    ) as client:
        yield client


def batch_item(sb: UserSandbox, batch_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = table(sb).get_item(Key={"pk": f"batch#{batch_id}"}).get("Item")
    return item


def batches_of(sb: UserSandbox, key: str) -> list[dict[str, Any]]:
    items = table(sb).scan(
        FilterExpression="begins_with(pk, :b) AND #f.#k = :key",
        ExpressionAttributeNames={"#f": "file", "#k": "key"},
        ExpressionAttributeValues={":b": "batch#", ":key": key},
    )["Items"]
    return list(items)


def wait_ended(sb: UserSandbox, batch_id: str, timeout: float = 180.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        item = batch_item(sb, batch_id)
        return item if item and item["status"] in {"COMPLETED", "CANCELED", "REFUSED"} else None

    return wait_until(ended, timeout=timeout, what=f"batch {batch_id} ended")


def results_of(sb: UserSandbox, item: dict[str, Any]) -> list[dict[str, Any]]:
    body = sb.client("s3").get_object(Bucket=item["results_bucket"], Key=item["results_key"])["Body"].read()
    return [json.loads(line) for line in body.decode().splitlines()]


def batch_messages(outcomes: Subscriber, batch_id: str) -> list[dict[str, Any]]:
    return [
        m["message"]
        for m in outcomes.drain()
        if m["message"].get("batch_id") == batch_id and "job_id" not in m["message"]
    ]


def line_messages(outcomes: Subscriber, job_ids: set[str]) -> list[dict[str, Any]]:
    return [m["message"] for m in outcomes.drain() if m["message"].get("job_id") in job_ids]


def tasks_with(sb: UserSandbox, tag: str) -> list[dict[str, Any]]:
    return [t for t in sb.emulator.tasks() if tag in str(t["prompt"])]


def test_a_jsonl_upload_runs_as_one_batch_with_its_results_and_one_announcement(
    sb: UserSandbox, outcomes: Subscriber, api: ApiClient
) -> None:
    # Given a .jsonl of 15 good lines, 3 refused ones (invalid JSON, a bad size, a missing prompt)
    # and a blank line, uploaded under the prompt prefix
    tag = uuid.uuid4().hex[:8]
    lines = [json.dumps({"prompt": f"batch {tag} line {n}", **SMALL}) for n in range(18)]
    lines[4] = "{not json"
    lines[9] = json.dumps({"prompt": f"batch {tag} bad size", "size": "999*999"})
    lines.insert(12, "")
    lines[15] = json.dumps({"size": "640*360"})
    key = f"prompts/batch-{tag}.jsonl"
    bucket = sb.outputs["OutputBucketName"]
    sb.client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    [found] = wait_until(lambda: batches_of(sb, key) or None, timeout=30, what="the batch opened")

    # When it ends
    item = wait_ended(sb, found["batch_id"])

    # Then every good line succeeded once at the provider, each bad line is in the results with its
    # error, and the results hold exactly one line per non-blank input line, in order
    assert item["status"] == "COMPLETED"
    results = results_of(sb, item)
    numbers = [r["line"] for r in results]
    assert numbers == [n for n, text in enumerate(lines, start=1) if text.strip()]
    bad = {r["line"]: r for r in results if r["status"] != "SUCCEEDED"}
    assert sorted(bad) == [5, 10, 16]
    assert all(r["status"] == "FAILED" and r["error"]["code"] == "InvalidRequest" for r in bad.values())
    assert "line 5" in bad[5]["error"]["message"] and "size" in bad[10]["error"]["message"]
    good = [r for r in results if r["status"] == "SUCCEEDED"]
    assert len(good) == 15 and all(r["video_key"] and r["billed_seconds"] == 5 for r in good)
    tasks = tasks_with(sb, f"batch {tag} line")
    assert len(tasks) == 15 and len({t["prompt"] for t in tasks}) == 15
    assert int(item["ended_SUCCEEDED"]) == 15
    assert int(item["ended_FAILED"]) == 3

    # And the batch is announced once, with its counts; no line is announced on its own
    def announced() -> list[dict[str, Any]] | None:
        return batch_messages(outcomes, item["batch_id"]) or None

    wait_until(announced, timeout=10, what="the batch's announcement")
    time.sleep(0.5)  # a duplicate would follow right after the first
    [message] = batch_messages(outcomes, item["batch_id"])
    assert message["status"] == "COMPLETED"
    assert message["counts"]["SUCCEEDED"] == 15 and message["counts"]["FAILED"] == 3
    assert message["results"]["key"] == f"results/{item['batch_id']}.jsonl"
    assert line_messages(outcomes, {r["job_id"] for r in results}) == []

    # And the API shows the batch and its jobs in line order
    view = api.get_batch(item["batch_id"])
    assert (view["status"], view["progress"], view["lines"]) == (
        "COMPLETED",
        1.0,
        {"total": 18, "valid": 15, "refused": 3},
    )
    page = api.ok("GET", "/videos", query={"batch": item["batch_id"], "limit": 5})
    assert [j["origin"]["line"] for j in page["items"]] == numbers[:5]
    assert page["next_cursor"]


def test_a_garbage_file_is_refused_whole_with_one_message_and_no_job(
    sb: UserSandbox, outcomes: Subscriber
) -> None:
    key = f"prompts/garbage-{uuid.uuid4().hex[:8]}.jsonl"
    garbage = "\n".join(f"this is prose, not JSON, line {n}" for n in range(500))
    sb.client("s3").put_object(Bucket=sb.outputs["OutputBucketName"], Key=key, Body=garbage.encode())
    [found] = wait_until(lambda: batches_of(sb, key) or None, timeout=30, what="the batch opened")
    item = wait_ended(sb, found["batch_id"], timeout=60)

    assert item["status"] == "REFUSED"
    assert "100 of the first 100 lines are refused" in item["error_message"]
    wait_until(lambda: batch_messages(outcomes, item["batch_id"]) or None, timeout=10, what="the refusal")
    time.sleep(0.5)
    [message] = batch_messages(outcomes, item["batch_id"])
    assert message["status"] == "REFUSED" and message["error"]["code"] == "BatchRefused"
    items = table(sb).scan(
        FilterExpression="batch_id = :b", ExpressionAttributeValues={":b": item["batch_id"]}
    )
    assert [i["pk"] for i in items["Items"] if i.get("kind") == "job"] == []


def test_a_batch_canceled_midway_starts_no_line_after_the_answer_and_leaves_no_pending_task(
    sb: UserSandbox, outcomes: Subscriber, api: ApiClient
) -> None:
    # Given a 40-line batch posted through the API from the caller's own folder, its lines queued for
    # the governor's 3 slots
    tag = uuid.uuid4().hex[:8]
    folder = "inputs/123456789012/user/sandbox/"
    key = f"{folder}cancel-{tag}.jsonl"
    body = "\n".join(json.dumps({"prompt": f"cancel {tag} line {n}", **SMALL}) for n in range(40))
    sb.client("s3").put_object(Bucket=sb.outputs["OutputBucketName"], Key=key, Body=body.encode())
    opened = api.submit_batch({"key": key})
    batch_id = opened["batch_id"]
    assert opened["status"] in {"READING", "RUNNING"}
    wait_until(
        lambda: sum(1 for t in tasks_with(sb, f"cancel {tag}") if t["status"] == "SUCCEEDED") >= 4 or None,
        timeout=120,
        what="a few lines done",
    )

    # When it is canceled midway
    canceled = api.ok("DELETE", f"/batches/{batch_id}")
    answered = time.time()
    assert canceled["status"] == "CANCELING" and canceled["cancellable"] is False
    item = wait_ended(sb, batch_id)

    # Then no line's task was created after the answer, none is left PENDING, and every line is in
    # the results: succeeded, or canceled (started or not)
    tasks = tasks_with(sb, f"cancel {tag}")
    late = [
        t
        for t in tasks
        if datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")).timestamp() > answered
    ]
    assert late == []
    assert [t for t in tasks if t["status"] == "PENDING"] == []
    assert item["status"] == "CANCELED"
    results = results_of(sb, item)
    assert [r["line"] for r in results] == list(range(1, 41))
    statuses = {r["status"] for r in results}
    assert statuses <= {"SUCCEEDED", "CANCELED"} and "CANCELED" in statuses
    succeeded = [r for r in results if r["status"] == "SUCCEEDED"]
    assert len(succeeded) == sum(1 for t in tasks if t["status"] == "SUCCEEDED")
    # what did not run is given back: the reservation less what the lines that ran kept
    summary = json.loads(
        sb.client("s3").get_object(Bucket=item["results_bucket"], Key=item["summary_key"])["Body"].read()
    )
    assert summary["billed_seconds"] == 5 * len(succeeded)
    assert summary["released_seconds"] + sum(5 for r in results if r["job_id"]) == 200
    wait_until(
        lambda: batch_messages(outcomes, batch_id) or None, timeout=10, what="the batch's announcement"
    )
    [message] = batch_messages(outcomes, batch_id)
    assert message["status"] == "CANCELED"
    # And a second cancel answers as the first did
    again = api.call("DELETE", f"/batches/{batch_id}")
    assert again.status == 200 and again.body["status"] == "CANCELED"


def test_another_callers_key_or_a_missing_file_is_refused_naming_the_key(api: ApiClient) -> None:
    for key, rule in (
        ("inputs/123456789012/user/someone-else/x.jsonl", "own folder"),
        ("inputs/123456789012/user/sandbox/missing.jsonl", "no object"),
        ("inputs/123456789012/user/sandbox/x.txt", ".jsonl"),
    ):
        answer = api.call("POST", "/batches", json_body={"key": key})
        assert answer.status == 400, answer.body
        error = answer.body["error"]
        assert rule in error["message"] and "key" in error["message"], error
