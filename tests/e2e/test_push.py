"""Push completion end to end: the emulator pushes each task's end to the deployed public callback
route, which wakes the job's parked wait (`.waitForTaskToken` with `TimeoutSecondsPath`).

The schedule here expects every tier to run 100 times longer than the emulator does
(`GenerationTimeScale`), so its first safety-net look is minutes away: a job that ends within
seconds was woken by its push, not found by polling.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from t2v_sandbox.user_sandbox import UserSandbox, config_for, wait_until

from tests.e2e.test_e2e import TEMPLATE, table, tasks_for

TIER_SIZES = iter(["640*360", "640*480", "640*640", "480*640", "360*640", "1024*576", "1024*768"])


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp("push-sandbox"),
        overrides={"PollIntervalSeconds": "1", "GenerationTimeScale": "100"},
        pending_seconds=0.5,
        running_seconds=1.0,
        write_endpoints=False,
    )
    config.push = True
    with UserSandbox(config) as sandbox:
        yield sandbox


def start(sb: UserSandbox, prompt: str, size: str) -> str:
    job_id = f"push-{uuid.uuid4().hex[:10]}"
    sb.client("stepfunctions").start_execution(
        stateMachineArn=sb.outputs["StateMachineArn"],
        name=job_id,
        input=json.dumps(
            {
                "job_id": job_id,
                "request": {"prompt": prompt, "size": size, "duration": 5},
                "source": "e2e",
                "origin": {},
                "start_delay_seconds": 0,
            }
        ),
    )
    return job_id


def ended(sb: UserSandbox, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        item: dict[str, Any] | None = table(sb).get_item(Key={"pk": job_id}).get("Item")
        return item if item and item["status"] in {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"} else None

    return wait_until(probe, timeout=timeout, what=f"job {job_id} ending")


def queries(sb: UserSandbox, task_id: str) -> int:
    return sum(1 for r in sb.emulator.requests() if r["endpoint"] == "query" and r["task_id"] == task_id)


def park_results(sb: UserSandbox, job_id: str) -> list[str]:
    """How each ParkForPush task ended: TaskSucceeded (woken) or TaskTimedOut."""
    arn = sb.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    events = sb.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    results, parked = [], False
    for event in events:
        name = event.get("stateEnteredEventDetails", {}).get("name")
        if event["type"] == "TaskStateEntered":
            parked = name == "ParkForPush"
        elif parked and event["type"] in {"TaskSucceeded", "TaskTimedOut", "TaskFailed"}:
            results.append(event["type"])
            parked = False
    return results


def callback_url(sb: UserSandbox) -> str:
    url = sb.endpoints.get("callback_url")
    assert url, "push on: the stack must have the callback route"
    return str(url)


def test_the_push_wakes_the_parked_wait_and_one_query_finds_the_video(sb: UserSandbox) -> None:
    prompt = f"pushed heron {uuid.uuid4().hex[:6]}"
    job_id = start(sb, prompt, next(TIER_SIZES))
    record = ended(sb, job_id)
    assert record["status"] == "SUCCEEDED", record
    [task] = tasks_for(sb, prompt)
    # Woken by the push: the first safety-net look is minutes away, yet the job ended in seconds.
    assert park_results(sb, job_id) == ["TaskSucceeded"]
    assert queries(sb, task["task_id"]) == 1
    pushes = [p for p in sb.emulator.pushes() if p["task_id"] == task["task_id"]]
    # Delivered (a cold callback on a loaded machine may outlast the first attempt's timeout, and
    # EventBridge-like retries send the same event again, which the callback drops).
    assert pushes and pushes[-1]["http_status"] == 200 and len({p["event_id"] for p in pushes}) == 1
    # Lag from the provider's finish to the SUCCEEDED record: seconds (cold starts on a loaded
    # machine included), where the first safety-net look is minutes after the finish.
    finished = sb.emulator.task(task["task_id"]).finished_at
    succeeded = datetime.fromisoformat(str(record["finished_at"]).replace("Z", "+00:00")).timestamp()
    assert succeeded - finished < 30.0


def test_a_duplicated_push_is_answered_and_dropped(sb: UserSandbox) -> None:
    prompt = f"pushed twice e2e-dup {uuid.uuid4().hex[:6]}"
    sb.emulator.set_faults(
        {"rules": [{"kind": "push_duplicated", "prompt_contains": "e2e-dup", "latency_seconds": 0.5}]}
    )
    job_id = start(sb, prompt, next(TIER_SIZES))
    record = ended(sb, job_id)
    assert record["status"] == "SUCCEEDED"
    [task] = tasks_for(sb, prompt)

    def accepted() -> list[dict[str, Any]]:
        return [
            p for p in sb.emulator.pushes() if p["task_id"] == task["task_id"] and p["http_status"] == 200
        ]

    copies = wait_until(lambda: len(accepted()) >= 2 and accepted(), timeout=40, what="both copies accepted")
    assert len({p["event_id"] for p in copies}) == 1
    assert int(table(sb).get_item(Key={"pk": job_id})["Item"]["pushes"]) == 1  # the copy was dropped
    assert queries(sb, task["task_id"]) == 1


def test_the_callback_route_refuses_missing_and_wrong_tokens(sb: UserSandbox) -> None:
    url = callback_url(sb)
    event = {"id": "e-1", "source": "acs.dashscope", "data": {"task_id": "t-1", "task_status": "SUCCEEDED"}}
    missing = httpx.post(url, json=event)
    wrong = httpx.post(url, json=event, headers={"x-eventbridge-signature-token": "guess"})
    huge = httpx.post(
        url, content=b"{" + b" " * 200_000 + b"}", headers={"x-eventbridge-signature-token": "x"}
    )
    for answer in (missing, wrong, huge):  # the token is checked before anything else
        assert answer.status_code == 401
        assert answer.json() == {"message": "Unauthorized"}


def test_the_callback_route_ignores_tasks_it_does_not_own_and_bounds_bodies(sb: UserSandbox) -> None:
    url = callback_url(sb)
    token = sb.client("secretsmanager").get_secret_value(SecretId=sb.physical_id("CallbackSecret"))[
        "SecretString"
    ]
    headers = {"x-eventbridge-signature-token": token}
    other = {"id": "e-2", "data": {"task_id": "another-apps-task", "task_status": "SUCCEEDED"}}
    answer = httpx.post(url, json=other, headers=headers)
    assert (answer.status_code, answer.json()) == (200, {"outcome": "unknown_task"})
    bad = httpx.post(url, json={"id": "e-3", "data": {"status": "SUCCEEDED"}}, headers=headers)
    assert bad.status_code == 400 and bad.json()["message"].startswith("data.task_id:")
    huge = httpx.post(url, content=b"{" + b" " * 70_000 + b"}", headers=headers)
    assert huge.status_code == 413


def test_a_forged_push_for_a_running_task_only_makes_us_look_early(sb: UserSandbox) -> None:
    # Given a job whose task is still queued at the provider (a long pending time)
    sb.emulator.config.pending_seconds = 15.0
    try:
        prompt = f"forged early look {uuid.uuid4().hex[:6]}"
        job_id = start(sb, prompt, next(TIER_SIZES))
        task_id = wait_until(
            lambda: (tasks_for(sb, prompt) or [{}])[0].get("task_id"), timeout=30, what="task"
        )
        wait_until(
            lambda: park_results(sb, job_id) == [] and _parked(sb, job_id), timeout=30, what="a parked wait"
        )
    finally:
        sb.emulator.config.pending_seconds = 0.5
    token = sb.client("secretsmanager").get_secret_value(SecretId=sb.physical_id("CallbackSecret"))[
        "SecretString"
    ]
    # When a push with the right token claims it finished
    forged = {"id": "forged-1", "data": {"task_id": task_id, "task_status": "SUCCEEDED"}}
    answer = httpx.post(callback_url(sb), json=forged, headers={"x-eventbridge-signature-token": token})
    assert answer.json() == {"outcome": "woken"}
    # Then the job looks (a query booked in the ledger), sees it still running, and carries on
    wait_until(lambda: queries(sb, task_id) >= 1, timeout=30, what="the early look")
    time.sleep(0.5)
    assert table(sb).get_item(Key={"pk": job_id})["Item"]["status"] in {"SUBMITTED", "PENDING", "RUNNING"}
    record = ended(sb, job_id, timeout=90)
    assert record["status"] == "SUCCEEDED"


def _parked(sb: UserSandbox, job_id: str) -> bool:
    item = table(sb).get_item(Key={"pk": job_id}).get("Item") or {}
    return bool(item.get("wait_token"))


def test_a_watched_job_shows_running_while_push_leaves_the_workflow_asleep(sb: UserSandbox) -> None:
    from t2v_client import ApiClient, Target

    # Given push on and a task that runs 12 s at the provider
    config = sb.emulator.config
    saved = config.running_seconds
    config.running_seconds = 12.0
    creds = sb.session.get_credentials().get_frozen_credentials()
    try:
        with ApiClient(Target(str(sb.endpoints["api_url"]), sb.config.region, creds)) as api:
            prompt = f"watched otter {uuid.uuid4().hex[:6]}"
            job_id = api.submit({"prompt": prompt, "size": next(TIER_SIZES), "duration": 5})["job_id"]
            # When someone reads it by its id, as the console's job page and `--wait` do
            running = wait_until(
                lambda: (view := api.get(job_id))["status"] == "RUNNING" and view,
                timeout=30,
                what=f"job {job_id} read as RUNNING",
            )
            # Then RUNNING shows while it runs, and a cancel is neither offered nor possible
            assert running["cancellable"] is False
            assert [h["status"] for h in running["history"]][-1] == "RUNNING"
            assert api.call("DELETE", f"/videos/{job_id}").status == 409
            record = ended(sb, job_id, timeout=60)
    finally:
        config.running_seconds = saved
    # and it ends by its push, with RUNNING in its history; its looks were few
    assert record["status"] == "SUCCEEDED", record
    assert "RUNNING" in [h["status"] for h in record["history"]]
    assert park_results(sb, job_id) == ["TaskSucceeded"]
    [task] = tasks_for(sb, prompt)
    assert 2 <= queries(sb, task["task_id"]) <= 5  # a look every 5 s while read, then the one after the push
