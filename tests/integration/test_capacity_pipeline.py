"""The capacity governor through the real handlers, against moto (real HTTP) and the DashScope emulator.

The driver plays the state machine's part as tests/integration/test_pipeline.py does; the real ASL
(ParkForCapacity and its wakes) runs in the e2e tier. Every ending frees the job's capacity and
admits the next queued job: success (at the task's end, before the download), failure, cancel,
timeout, the sweeper's reclaim after a crash; a crash while holding a lease creates one task only.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from t2v import wiring
from t2v.adapters.capacity_leases import CAPACITY_KEY, CapacityLeases
from t2v.errors import RetryableProviderError
from t2v.jobs import JobStatus
from t2v.times import iso

from tests.conftest import lambda_context

submit_app = importlib.import_module("functions.submit.app")
status_app = importlib.import_module("functions.status.app")
finalize_app = importlib.import_module("functions.finalize.app")
park_app = importlib.import_module("functions.park.app")

CTX = lambda_context("test")
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


class RecordingWaker:
    """Stands in for Step Functions' SendTaskSuccess: the tokens woken, in order."""

    def __init__(self) -> None:
        self.woken: list[str] = []

    def wake(self, token: str) -> bool:
        self.woken.append(token)
        return True


@pytest.fixture
def env(stack: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DASHSCOPE_BASE_URL", emulator.base_url)
    monkeypatch.setenv("VIDEO_HOST_ALLOWLIST", emulator.root_url)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    monkeypatch.setenv("PROVIDER_MAX_TASKS_IN_FLIGHT", "1")
    for cached in (wiring.provider_deps, wiring.finalize_deps, wiring.push_deps):
        cached.cache_clear()
    waker = RecordingWaker()
    wiring.provider_deps().capacity.waker = waker  # type: ignore[union-attr]
    wiring.finalize_deps().announce.capacity.waker = waker  # type: ignore[union-attr]
    yield SimpleNamespace(stack=stack, emu=emulator, waker=waker)
    for cached in (wiring.provider_deps, wiring.finalize_deps, wiring.push_deps):
        cached.cache_clear()


def event(job_id: str, prompt: str = "一只小猫在月光下奔跑") -> dict[str, Any]:
    return {
        "job_id": job_id,
        "request": {"prompt": prompt, "size": "640*360"},
        "source": "test",
        "origin": {},
        "execution": job_id,
    }


def record(env: Any, job_id: str, owner: str | None = None, prompt: str = "a cat") -> dict[str, Any]:
    """What a door does before the execution starts: the job recorded, with its owner."""
    now = datetime.now(UTC)
    wiring.provider_deps().repo.create_if_absent(
        job_id,
        request={"prompt": prompt, "size": "640*360"},
        source="api",
        origin={},
        now=now,
        deadline_at=now + timedelta(hours=2),
        owner=owner,
    )
    return event(job_id, prompt)


def capacity(env: Any) -> dict[str, Any]:
    from t2v.adapters.jobs_table import plain

    item = boto3.resource("dynamodb").Table(env.stack.table).get_item(Key={"pk": CAPACITY_KEY})["Item"]
    return plain(item)


def poll_until_done(turn: dict[str, Any]) -> dict[str, Any]:
    while turn["decision"] == "WAIT":
        turn = status_app.lambda_handler(turn, CTX)
    return turn


def park(job_id: str, token: str) -> dict[str, Any]:
    return park_app.lambda_handler({"job_id": job_id, "token": token, "purpose": "capacity"}, CTX)


def outcome_event(turn: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": turn["job_id"], "outcome": turn["outcome"], "polls": turn["polls"]}


def test_a_job_without_free_capacity_waits_and_the_first_tasks_end_admits_and_wakes_it(env: Any) -> None:
    first = submit_app.lambda_handler(event("job-a"), CTX)
    waiting = submit_app.lambda_handler(event("job-b"), CTX)

    # Then B waits in our queue: no provider task, its own status, a heartbeat as its park's timeout
    assert first["task_id"] and waiting["decision"] == "QUEUED"
    assert env.emu.create_count() == 1
    assert env.stack.job("job-b")["status"] == "WAITING"
    assert park("job-b", "token-b")["parked"] is True  # still queued: the wait stays parked

    # When A's task ends: its lease is freed at the status step, before any download
    done = poll_until_done(first)
    assert done["decision"] == "SUCCEEDED"
    assert env.waker.woken == ["token-b"]
    assert env.stack.job("job-b")["lease_at"] and "queue_owner" not in env.stack.job("job-b")
    assert capacity(env)["leases"] == {"job-b": env.stack.job("job-b")["lease_at"]}

    # Then B, woken, creates its task; A's video is stored as always
    admitted = submit_app.lambda_handler(event("job-b"), CTX)
    assert admitted["task_id"] and env.emu.create_count() == 2
    finalize_app.lambda_handler(outcome_event(done), CTX)
    assert env.stack.job("job-a")["status"] == "SUCCEEDED"
    assert poll_until_done(admitted)["decision"] == "SUCCEEDED"
    assert capacity(env)["held"] == 0 and capacity(env)["leases"] == {}


def test_a_park_after_the_admission_wakes_itself(env: Any) -> None:
    first = submit_app.lambda_handler(event("job-a"), CTX)
    submit_app.lambda_handler(event("job-b"), CTX)
    poll_until_done(first)  # B admitted before it ever parked: nothing to wake yet
    assert env.waker.woken == []

    # The park step's own hand-over: it sees the lease and wakes its wait at once
    assert park("job-b", "token-b")["parked"] is False


def test_a_failed_task_frees_its_capacity(env: Any) -> None:
    env.emu.set_faults({"rules": [{"endpoint": "task", "kind": "task_failed", "prompt_contains": "fail-me"}]})
    first = submit_app.lambda_handler(event("job-a", "fail-me please"), CTX)
    submit_app.lambda_handler(event("job-b"), CTX)

    failed = poll_until_done(first)
    finalize_app.lambda_handler(outcome_event(failed), CTX)

    assert env.stack.job("job-a")["status"] == "FAILED"
    assert env.stack.job("job-b")["lease_at"]


def test_a_timed_out_job_frees_its_capacity(env: Any) -> None:
    env.emu.config.pending_seconds = 60.0  # still PENDING at the last look
    first = submit_app.lambda_handler(event("job-a"), CTX)
    submit_app.lambda_handler(event("job-b"), CTX)

    late = {**first, "deadline_at": iso(datetime.now(UTC) - timedelta(seconds=1))}
    timed_out = status_app.lambda_handler(late, CTX)
    assert timed_out["decision"] == "TIMED_OUT"
    assert env.stack.job("job-b")["lease_at"]


def test_a_job_canceled_while_queued_leaves_the_queue_and_one_canceled_holding_frees_its_lease(
    env: Any,
) -> None:
    first = submit_app.lambda_handler(event("job-a"), CTX)
    submit_app.lambda_handler(event("job-b"), CTX)
    submit_app.lambda_handler(event("job-c"), CTX)
    canceled = {"kind": "ended", "status": "CANCELED", "code": "CanceledByUser", "message": "canceled"}

    # When B is canceled while queued: it leaves the queue (C is next), nothing is admitted
    finalize_app.lambda_handler({"job_id": "job-b", "outcome": canceled, "polls": 0}, CTX)
    assert "queue_owner" not in env.stack.job("job-b")
    assert capacity(env)["queued"] == {"-": 1} and capacity(env)["held"] == 1

    # When A, holding the lease, is canceled: C gets it
    finalize_app.lambda_handler({"job_id": first["job_id"], "outcome": canceled, "polls": 0}, CTX)
    assert env.stack.job("job-c")["lease_at"] and capacity(env)["leases"].keys() == {"job-c"}


def test_the_sweeper_reclaims_a_lease_whose_holder_ended_without_freeing_it(env: Any) -> None:
    submit_app.lambda_handler(event("job-a"), CTX)
    submit_app.lambda_handler(event("job-b"), CTX)
    # Given A ended by a function that died before it freed the lease (the end written, nothing else)
    governor = wiring.provider_deps().capacity
    assert governor is not None
    wiring.provider_deps().repo.transition("job-a", JobStatus.FAILED, now=datetime.now(UTC))
    assert capacity(env)["leases"].keys() == {"job-a"}

    reclaimed = governor.reclaim(lambda job_id: str(env.stack.job(job_id)["status"]))

    assert reclaimed == ["job-a"] and env.stack.job("job-b")["lease_at"]
    assert governor.reclaim(lambda job_id: str(env.stack.job(job_id)["status"])) == []  # once


def test_a_crash_while_holding_a_lease_keeps_it_and_creates_one_task(env: Any) -> None:
    # Given the admitted job's create fails at the provider (a 500: retryable), as a crash would leave it
    env.emu.set_faults({"rules": [{"endpoint": "create", "kind": "error", "status": 500, "times": 1}]})
    with pytest.raises(RetryableProviderError):
        submit_app.lambda_handler(event("job-a"), CTX)
    assert env.stack.job("job-a")["lease_at"] and capacity(env)["held"] == 1

    # When Step Functions retries Submit: it creates with the lease it holds, once
    retried = submit_app.lambda_handler(event("job-a"), CTX)
    assert retried["task_id"] and env.emu.create_count() == 1
    assert capacity(env)["held"] == 1 and capacity(env)["queued"].get("-", 0) == 0


def test_a_create_refused_for_capacity_goes_back_to_the_queue_and_lowers_the_cap(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDER_MAX_TASKS_IN_FLIGHT", "3")
    wiring.provider_deps.cache_clear()
    wiring.provider_deps().capacity.waker = env.waker  # type: ignore[union-attr]
    first = submit_app.lambda_handler(event("job-a"), CTX)
    env.emu.set_faults({"rules": [{"endpoint": "create", "kind": "error", "code": "Throttling", "times": 2}]})

    refused = submit_app.lambda_handler(event("job-b"), CTX)

    # Then B waits again at the front of its line; a lone refusal below the cap is doubted: one step
    assert refused["decision"] == "QUEUED" and env.emu.create_count() == 1
    assert env.stack.job("job-b")["status"] == "WAITING" and env.stack.job("job-b")["queue_owner"] == "-"
    assert capacity(env)["cap"] == 2 and capacity(env)["doubt"] is True
    # When B looks again and is refused a second time, the cap is what was in flight (A alone)
    assert submit_app.lambda_handler(event("job-b"), CTX)["decision"] == "QUEUED"
    assert capacity(env)["cap"] == 1 and capacity(env)["leases"].keys() == {"job-a"}
    assert submit_app.lambda_handler(event("job-b"), CTX)["decision"] == "QUEUED"  # the cap holds

    # When A ends, B gets the lease and its create goes through; a round of accepted creates raises the cap
    poll_until_done(first)
    assert submit_app.lambda_handler(event("job-b"), CTX)["task_id"]
    assert capacity(env)["cap"] == 2


def test_free_capacity_goes_round_robin_between_owners_fifo_within_one(env: Any) -> None:
    first = submit_app.lambda_handler(record(env, "a-1", ALICE), CTX)
    for job_id in ("a-2", "a-3"):
        assert submit_app.lambda_handler(record(env, job_id, ALICE), CTX)["decision"] == "QUEUED"
    bobs = submit_app.lambda_handler(record(env, "b-1", BOB), CTX)
    assert bobs["decision"] == "QUEUED"
    # Each owner's own line: Bob is first in his, a-3 second in Alice's (a-2 ahead of it)
    leases = CapacityLeases(env.stack.table, ceiling=1)
    assert leases.position("b-1", BOB, str(env.stack.job("b-1")["queue_key"])) == 0
    assert leases.position("a-3", ALICE, str(env.stack.job("a-3")["queue_key"])) == 1

    order = []
    turn = first
    for _ in range(3):
        poll_until_done(turn)
        [admitted] = CapacityLeases(env.stack.table, ceiling=1).lease_holders()
        order.append(admitted)
        turn = submit_app.lambda_handler(record(env, admitted, None), CTX)
    # Bob's single request is not stuck behind Alice's line
    assert order == ["b-1", "a-2", "a-3"]


def test_a_wait_past_max_queue_seconds_ends_timed_out_and_leaves_the_queue(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit_app.lambda_handler(event("job-a"), CTX)
    submit_app.lambda_handler(event("job-b"), CTX)
    table = boto3.resource("dynamodb").Table(env.stack.table)
    long_ago = iso(datetime.now(UTC) - timedelta(hours=13))
    table.update_item(
        Key={"pk": "job-b"}, UpdateExpression="SET queued_at = :t", ExpressionAttributeValues={":t": long_ago}
    )

    gave_up = submit_app.lambda_handler(event("job-b"), CTX)

    assert gave_up["decision"] == "TIMED_OUT" and gave_up["outcome"]["code"] == "CapacityWaitTimeout"
    finalize_app.lambda_handler(outcome_event(gave_up), CTX)
    job = env.stack.job("job-b")
    assert job["status"] == "TIMED_OUT" and "queue_owner" not in job
    assert capacity(env)["queued"] == {"-": 0} and env.emu.create_count() == 1


def test_a_wake_lost_between_the_admission_and_its_wake_is_sent_again_by_the_sweeper(env: Any) -> None:
    submit_app.lambda_handler(event("job-a"), CTX)
    submit_app.lambda_handler(event("job-b"), CTX)
    assert park("job-b", "token-b")["parked"] is True
    governor = wiring.provider_deps().capacity
    assert governor is not None
    # Given A's end freed its lease and admitted B, and the function died before it woke B's wait
    # (the writes made, the wake not sent: B would sleep until its heartbeat)
    governor.leases.release("job-a")
    assert governor.leases.admit(now=datetime.now(UTC), deadline_seconds=7200) == ["job-b"]
    assert env.waker.woken == [] and env.stack.job("job-b")["status"] == "WAITING"
    wiring.provider_deps().repo.transition("job-a", JobStatus.SUCCEEDED, now=datetime.now(UTC))

    # When the sweeper runs: B, holding a lease while still WAITING, is woken
    assert governor.reclaim(lambda job_id: str(env.stack.job(job_id)["status"])) == []
    assert env.waker.woken == ["token-b"]
    # And, woken, it creates its task with that lease
    assert submit_app.lambda_handler(event("job-b"), CTX)["task_id"] and env.emu.create_count() == 2
