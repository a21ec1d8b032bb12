"""The submit, status and finalize handlers against moto (real HTTP) and the DashScope emulator.

A small driver plays the state machine's part (submit -> poll until final -> finalize or record
the outcome), calling the real Lambda handlers; the real ASL runs in the e2e tier.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import httpx
import pytest
from t2v import wiring
from t2v.errors import AmbiguousCreateError, TerminalProviderError
from t2v.media import DownloadRejectedError
from t2v.request import InvalidRequestError

from tests.conftest import ROOT, lambda_context

submit_app = importlib.import_module("functions.submit.app")
status_app = importlib.import_module("functions.status.app")
finalize_app = importlib.import_module("functions.finalize.app")

CTX = lambda_context("test")


@pytest.fixture
def env(stack: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DASHSCOPE_BASE_URL", emulator.base_url)
    monkeypatch.setenv("VIDEO_HOST_ALLOWLIST", emulator.root_url)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    wiring.provider_deps.cache_clear()
    wiring.finalize_deps.cache_clear()
    yield SimpleNamespace(stack=stack, emu=emulator)
    wiring.provider_deps.cache_clear()
    wiring.finalize_deps.cache_clear()


def start_event(job_id: str, **request: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "request": {"prompt": "一只小猫在月光下奔跑", "size": "640*360", **request},
        "source": "test",
        "origin": {},
        "execution": job_id,
    }


def catch_event(state: dict[str, Any], error: str, message: str) -> dict[str, Any]:
    """What the ASL's RecordFailure sends after a Catch."""
    cause = json.dumps({"errorType": error, "errorMessage": message})
    return {
        "job_id": state["job_id"],
        "error": {"Error": error, "Cause": cause},
        **{k: state[k] for k in ("request", "source", "origin")},
    }


def record_failure(state: dict[str, Any], exc: Exception) -> dict[str, Any]:
    return finalize_app.lambda_handler(catch_event(state, type(exc).__name__, str(exc)), CTX)


def outcome_event(turn: dict[str, Any], **outcome: Any) -> dict[str, Any]:
    """What the ASL's Finalize and RecordOutcome send: the job, the turn's outcome, its polls."""
    return {"job_id": turn["job_id"], "outcome": {**turn["outcome"], **outcome}, "polls": turn["polls"]}


def poll_until_done(turn: dict[str, Any]) -> dict[str, Any]:
    while turn["decision"] == "WAIT":
        turn = status_app.lambda_handler(turn, CTX)
    return turn


def run_job(state: dict[str, Any], max_polls: int = 200) -> dict[str, Any]:
    """What the state machine does, with its Catch into the failure path."""
    try:
        poll = submit_app.lambda_handler(state, CTX)
        for _ in range(max_polls):
            poll = status_app.lambda_handler({**poll, "wait_seconds": 0}, CTX)
            if poll["decision"] != "WAIT":
                break
            import time

            time.sleep(0.1)
        return finalize_app.lambda_handler(outcome_event(poll), CTX)
    except Exception as exc:  # the ASL's Catch: States.ALL -> RecordFailure
        return record_failure(state, exc)


def test_success_stores_the_mp4_and_announces_once(env: Any) -> None:
    result = run_job(start_event("job-ok", audio=True))

    assert result["status"] == "SUCCEEDED"
    job = env.stack.job("job-ok")
    assert job["status"] == "SUCCEEDED"
    assert [h["status"] for h in job["history"]][:2] == ["ACCEPTED", "SUBMITTED"]
    assert job["history"][-2]["status"] == "DOWNLOADING"
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=env.stack.bucket, Key="videos/job-ok.mp4")["Body"].read()
    assert body[4:8] == b"ftyp"
    expected = httpx.get(env.emu.video_url(job["task_id"])).content
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(expected).hexdigest() == job["sha256"]
    meta = json.loads(s3.get_object(Bucket=env.stack.bucket, Key="videos/job-ok.json")["Body"].read())
    assert meta["task_id"] == job["task_id"] and meta["video"]["sha256"] == job["sha256"]
    assert meta["usage"]["duration"] == 5
    notes = env.stack.notifications()
    assert len(notes) == 1
    assert notes[0]["attributes"] == {
        "status": "SUCCEEDED",
        "source": "test",
        "owner": "none",  # recorded without one, as the test's door does
        "notification_id": "job-ok/SUCCEEDED",
    }
    assert notes[0]["message"]["video"]["uri"] == f"s3://{env.stack.bucket}/videos/job-ok.mp4"
    assert env.emu.create_count() == 1


def test_retried_submit_creates_one_task(env: Any) -> None:
    event = start_event("job-retry")
    first = submit_app.lambda_handler(event, CTX)
    second = submit_app.lambda_handler(event, CTX)
    assert first["task_id"] == second["task_id"]
    assert env.emu.create_count() == 1


def test_retried_finalize_gives_one_object_and_one_notification(env: Any) -> None:
    poll = poll_until_done(submit_app.lambda_handler(start_event("job-fin"), CTX))
    finalize_app.lambda_handler(outcome_event(poll), CTX)
    again = finalize_app.lambda_handler(outcome_event(poll), CTX)
    assert again["status"] == "SUCCEEDED"
    listing = boto3.client("s3").list_object_versions(Bucket=env.stack.bucket, Prefix="videos/job-fin.mp4")
    assert len(listing.get("Versions", [])) == 1
    assert len(env.stack.notifications()) == 1


def test_data_inspection_failure_ends_failed_with_the_reason(env: Any) -> None:
    env.emu.set_faults(
        {
            "rules": [
                {
                    "kind": "task_failed",
                    "prompt_contains": "forbidden",
                    "code": "DataInspectionFailed",
                    "message": "Input data may contain inappropriate content.",
                }
            ]
        }
    )
    result = run_job(start_event("job-bad", prompt="a forbidden scene"))
    assert result["status"] == "FAILED"
    job = env.stack.job("job-bad")
    assert (job["error_code"], job["status"]) == ("DataInspectionFailed", "FAILED")
    [note] = env.stack.notifications()
    assert note["attributes"]["status"] == "FAILED"
    assert note["message"]["error"]["code"] == "DataInspectionFailed"
    assert "video" not in note["message"]


def test_succeeded_without_video_is_a_failure(env: Any) -> None:
    env.emu.set_faults({"rules": [{"kind": "no_video_url"}]})
    run_job(start_event("job-novideo"))
    job = env.stack.job("job-novideo")
    assert (job["status"], job["error_code"]) == ("FAILED", "NoVideo")
    assert env.stack.notifications()[0]["attributes"]["status"] == "FAILED"


def test_invalid_request_is_recorded_and_announced_without_a_provider_call(env: Any) -> None:
    with pytest.raises(InvalidRequestError, match="duration"):
        submit_app.lambda_handler(start_event("job-invalid", size="1920*1080", duration=10), CTX)
    run_job(start_event("job-invalid", size="1920*1080", duration=10))
    job = env.stack.job("job-invalid")
    assert (job["status"], job["error_code"]) == ("FAILED", "InvalidRequest")
    assert "1080P" in job["error_message"]
    assert env.emu.create_count() == 0
    assert len(env.stack.notifications()) == 1


def test_create_errors_are_retryable_and_never_duplicate(env: Any) -> None:
    env.emu.set_faults(
        {"rules": [{"endpoint": "create", "kind": "error", "code": "InternalError", "times": 2}]}
    )
    event = start_event("job-5xx")
    for _ in range(2):
        with pytest.raises(Exception, match="InternalError"):
            submit_app.lambda_handler(event, CTX)
    result = submit_app.lambda_handler(event, CTX)
    assert result["task_id"] and env.emu.create_count() == 1


def test_ambiguous_create_is_reconciled_through_list_tasks(env: Any) -> None:
    env.emu.set_faults({"rules": [{"kind": "drop_after_accept", "times": 1}]})
    result = submit_app.lambda_handler(start_event("job-amb"), CTX)  # the lost answer is found by listing
    assert env.emu.create_count() == 1
    assert result["task_id"] == env.emu.tasks()[0]["task_id"]
    assert env.stack.job("job-amb")["reconciled"] is True


def test_terminal_create_error_keeps_the_provider_reason(env: Any) -> None:
    env.emu.set_faults({"rules": [{"endpoint": "create", "kind": "error", "code": "Arrearage"}]})
    with pytest.raises(TerminalProviderError):
        submit_app.lambda_handler(start_event("job-arrears"), CTX)
    run_job(start_event("job-arrears"))
    job = env.stack.job("job-arrears")
    assert (job["status"], job["error_code"]) == ("FAILED", "Arrearage")
    assert job["error_request_id"]


def test_query_throttling_waits_longer_and_keeps_polling(env: Any) -> None:
    poll = submit_app.lambda_handler(start_event("job-429"), CTX)
    env.emu.set_faults({"rules": [{"endpoint": "query", "kind": "error", "code": "Throttling", "times": 1}]})
    throttled = status_app.lambda_handler(poll, CTX)
    assert throttled["decision"] == "WAIT" and throttled["wait_seconds"] >= 2
    assert throttled["errors"] == 1 and throttled["task_status"] is None
    assert run_job(start_event("job-429"))["status"] == "SUCCEEDED"


def test_deadline_ends_timed_out(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    env.emu.config.pending_seconds = 30.0  # still PENDING at the last look
    poll = submit_app.lambda_handler(start_event("job-late"), CTX)
    late = status_app.lambda_handler({**poll, "deadline_at": "2000-01-01T00:00:00.000Z"}, CTX)
    assert late["decision"] == "TIMED_OUT"
    finalize_app.lambda_handler(outcome_event(late), CTX)
    assert env.stack.job("job-late")["status"] == "TIMED_OUT"
    assert env.stack.notifications()[0]["attributes"]["status"] == "TIMED_OUT"


def test_download_from_a_host_outside_the_allowlist_is_refused(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    poll = poll_until_done(submit_app.lambda_handler(start_event("job-ssrf"), CTX))
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "https://evil.example.com/x.mp4",
        env.emu.video_url(poll["task_id"]).replace("127.0.0.1", "localhost"),
    ):
        with pytest.raises(DownloadRejectedError):
            finalize_app.lambda_handler(outcome_event(poll, video_url=url), CTX)
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=env.stack.bucket)
    uploads = boto3.client("s3").list_multipart_uploads(Bucket=env.stack.bucket)
    assert not uploads.get("Uploads")


def test_reset_mid_download_is_retryable_and_leaves_no_half_object(env: Any) -> None:
    from t2v.media import DownloadError

    poll = poll_until_done(submit_app.lambda_handler(start_event("job-reset"), CTX))
    env.emu.set_faults({"rules": [{"kind": "reset_mid_download", "reset_after_bytes": 2048, "times": 1}]})
    with pytest.raises(DownloadError):
        finalize_app.lambda_handler(outcome_event(poll), CTX)
    s3 = boto3.client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket=env.stack.bucket)
    assert not s3.list_multipart_uploads(Bucket=env.stack.bucket).get("Uploads")
    assert finalize_app.lambda_handler(outcome_event(poll), CTX)["status"] == "SUCCEEDED"


def test_unknown_task_ends_failed_as_unknown(env: Any) -> None:
    poll = submit_app.lambda_handler(start_event("job-unknown"), CTX)
    unknown = status_app.lambda_handler({**poll, "task_id": "no-such-task"}, CTX)
    assert unknown["decision"] == "UNKNOWN"
    finalize_app.lambda_handler(outcome_event(unknown), CTX)
    job = env.stack.job("job-unknown")
    assert (job["status"], job["error_code"]) == ("FAILED", "TaskUnknown")


def test_ambiguous_error_class_is_what_the_state_machine_retries() -> None:
    asl = json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8"))
    retried = {e for r in asl["States"]["Submit"]["Retry"] for e in r["ErrorEquals"]}
    assert AmbiguousCreateError.__name__ in retried
    assert "States.ALL" not in retried


def test_the_schedule_learns_run_times_and_counts_active_jobs_back_to_zero(env: Any) -> None:
    # Given two jobs: one succeeds, one the provider fails
    env.emu.set_faults({"rules": [{"endpoint": "task", "kind": "task_failed", "prompt_contains": "fail-me"}]})
    table = boto3.resource("dynamodb").Table(env.stack.table)
    first = submit_app.lambda_handler(start_event("job-sched"), CTX)
    submit_app.lambda_handler(start_event("job-sched-2", prompt="fail-me please"), CTX)
    # While both run, the account's active count says so, and the first poll is booked ahead
    assert table.get_item(Key={"pk": "stats#active"})["Item"]["n"] == 2
    submitted = datetime.fromisoformat(first["submitted_at"]).timestamp()
    assert first["slot"] >= int(submitted)
    assert first["tier"] == {"resolution": "360P", "seconds": 5, "audio": False}
    # When both end
    assert run_job(start_event("job-sched"))["status"] == "SUCCEEDED"
    assert run_job(start_event("job-sched-2", prompt="fail-me please"))["status"] == "FAILED"
    # Then no job is counted as active, and the tier learned the emulator's queue and run times
    assert table.get_item(Key={"pk": "stats#active"})["Item"]["n"] == 0
    learned = table.get_item(Key={"pk": "stats#tier#360P/5s/silent"})["Item"]
    cfg = env.emu.config
    assert [float(v) for v in learned["run"]] == [pytest.approx(cfg.running_seconds, abs=0.01)]
    assert [float(v) for v in learned["queue"]] == [pytest.approx(cfg.pending_seconds, abs=0.01)]
    # And no one-second slot was booked beyond the budget
    slots = [i for i in table.scan()["Items"] if str(i["pk"]).startswith("slot#")]
    assert slots and max(int(i["n"]) for i in slots) <= 16


# --- found by the fault soak (tools/t2v_sandbox/soak.py)


def other_jobs_unclaimed_task(env: Any, prompt: str) -> str:
    """A task at the provider that no job has bound yet (its job's create answer is still in flight):
    made with the pipeline's own key, as another job of this stack would make it."""
    from t2v.dashscope import DashScopeClient
    from t2v.families import parse_request

    with DashScopeClient(env.stack.api_key, base_url=env.emu.base_url) as client:
        return client.create_task(parse_request({"prompt": prompt, "size": "640*360"})).task_id


def wait_until_all_tasks_finished(env: Any, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while any(t["status"] in {"PENDING", "RUNNING"} for t in env.emu.tasks()):
        assert time.monotonic() < deadline, env.emu.tasks()
        time.sleep(0.1)


def test_lost_create_never_adopts_another_jobs_unclaimed_task(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another job's task that nobody owns yet, and our create whose answer is lost; both tasks
    # run long enough that a loaded machine still reconciles while they run
    monkeypatch.setenv("PROVIDER_CLOCK_SKEW_SECONDS", "3")  # theirs falls in our window on a slow machine
    wiring.provider_deps.cache_clear()
    env.emu.config.running_seconds = 5.0
    theirs = other_jobs_unclaimed_task(env, "their prompt")
    env.emu.set_faults(
        {"rules": [{"kind": "drop_after_accept", "prompt_contains": "our prompt", "times": 1}]}
    )
    event = start_event("job-lost", prompt="our prompt")

    # When submit reconciles while both tasks still run, it cannot tell them apart: it waits
    with pytest.raises(AmbiguousCreateError):
        submit_app.lambda_handler(event, CTX)
    assert env.stack.job("job-lost").get("task_id") is None

    # Then once the tasks show their prompts, the retry binds its own task, never theirs, and creates nothing
    wait_until_all_tasks_finished(env)
    result = submit_app.lambda_handler(event, CTX)
    ours = [t["task_id"] for t in env.emu.tasks() if t["prompt"] == "our prompt"]
    assert result["task_id"] == ours[0] != theirs
    assert env.emu.create_count() == 2


def test_lost_create_whose_task_failed_is_adopted_not_created_again(env: Any) -> None:
    # Given a create whose answer is lost and whose task fails (a FAILED task shows no prompt)
    env.emu.set_faults(
        {
            "rules": [
                {"kind": "drop_after_accept", "times": 1},
                {"kind": "task_failed", "code": "InternalError.Algo"},
            ]
        }
    )
    import time

    # When it is the only task the provider made while our create was in flight
    result = run_job(start_event("job-lost-failed"))
    time.sleep(0.8)

    # Then it is ours: one task, and the job ends with the provider's reason
    assert env.emu.create_count() == 1
    job = env.stack.job("job-lost-failed")
    assert (job["status"], job["error_code"]) == ("FAILED", "InternalError.Algo"), result
    assert job["task_id"] == env.emu.tasks()[0]["task_id"]


def test_two_announcers_at_once_publish_one_message(env: Any) -> None:
    # Given an invalid request whose rejection two deliveries of one trigger record at the same time
    from concurrent.futures import ThreadPoolExecutor

    event = catch_event(start_event("job-twice", size="999*999"), "InvalidRequestError", "size: bad")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: finalize_app.lambda_handler(event, CTX), range(4)))

    assert {r["status"] for r in results} == {"FAILED"}
    notes = env.stack.notifications()
    assert len(notes) == 1
    assert notes[0]["attributes"]["notification_id"] == "job-twice/FAILED"


def test_announcer_that_died_after_claiming_is_replaced_once(env: Any) -> None:
    # Given an announcer that took the claim and died before publishing
    from t2v.adapters.announcements import AnnouncementClaims
    from t2v.adapters.jobs_repo import JobsRepository
    from t2v.config import FinalizeSettings
    from t2v.contract import Ended
    from t2v.jobs import JobStatus
    from t2v.usecases.announce import end_job

    deps = wiring.build_announce_deps(FinalizeSettings.from_env())
    deps.notify_claim_stale_seconds = 0.5
    failed = Ended(status=JobStatus.FAILED, code="X", message="x")
    repo = JobsRepository(FinalizeSettings.from_env().jobs_table)
    repo.create_if_absent(
        "job-dead",
        request=start_event("job-dead")["request"],
        source="test",
        origin={},
        now=datetime.now(UTC),
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
    )
    assert AnnouncementClaims(FinalizeSettings.from_env().jobs_table).claim_notification(
        "job-dead", token="dead", now=datetime.now(UTC), stale_before=datetime.now(UTC)
    )

    # When the retry comes: it waits for the claim to go stale, then announces; a further retry does not
    end_job("job-dead", failed, deps)
    end_job("job-dead", failed, deps)

    assert len(env.stack.notifications()) == 1
    assert env.stack.job("job-dead")["notify_attempts"] == 2


def test_unanswered_create_never_adopts_a_task_another_unanswered_create_may_have_made(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another job whose create was sent and never answered, and a task nobody owns yet (theirs)
    from t2v.adapters.jobs_repo import JobsRepository
    from t2v.times import iso

    monkeypatch.setenv("CREATE_CLAIM_STALE_SECONDS", "1")
    wiring.provider_deps.cache_clear()
    repo = JobsRepository(env.stack.table)
    now = datetime.now(UTC)
    repo.create_if_absent(
        "job-rival",
        request={"prompt": "their prompt"},
        source="test",
        origin={},
        now=now,
        deadline_at=now + timedelta(hours=1),
    )
    repo.update_fields("job-rival", {"create_sent_at": iso(now)}, now=now)
    theirs = other_jobs_unclaimed_task(env, "their prompt")
    # and our create, which times out before the provider made anything
    env.emu.set_faults(
        {
            "rules": [
                {
                    "endpoint": "create",
                    "kind": "timeout",
                    "hold_seconds": 0.1,
                    "prompt_contains": "ours",
                    "times": 1,
                }
            ]
        }
    )
    event = start_event("job-ours", prompt="ours")

    # When submit reconciles, the lone unowned task may be the other job's: it does not take it
    with pytest.raises(AmbiguousCreateError):
        submit_app.lambda_handler(event, CTX)
    assert env.stack.job("job-ours").get("task_id") is None

    # Then once the task shows it is not ours and the claim has gone stale, one new create is made
    import time

    time.sleep(1.2)
    result = submit_app.lambda_handler(event, CTX)
    ours = [t["task_id"] for t in env.emu.tasks() if t["prompt"] == "ours"]
    assert result["task_id"] == ours[0] != theirs
    assert env.emu.create_count() == 2


def test_a_failed_task_two_unanswered_creates_may_have_made_goes_to_the_likeliest_maker(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another job with an unanswered create, and a FAILED task nobody owns (a FAILED task shows
    # no prompt) made while both creates were in flight; our create timed out before making anything
    import time

    from t2v.adapters.jobs_repo import JobsRepository
    from t2v.adapters.task_owners import TaskOwners
    from t2v.jobs import CONTESTED
    from t2v.times import iso

    monkeypatch.setenv("CREATE_CLAIM_STALE_SECONDS", "1")
    wiring.provider_deps.cache_clear()
    repo = JobsRepository(env.stack.table)
    now = datetime.now(UTC)
    repo.create_if_absent(
        "job-rival2",
        request={"prompt": "their prompt"},
        source="test",
        origin={},
        now=now,
        deadline_at=now + timedelta(hours=1),
    )
    lost = now + timedelta(seconds=0.5)  # the other create's answer was lost too
    repo.update_fields(
        "job-rival2",
        {"create_claimed_at": iso(now), "create_sent_at": iso(now), "create_ambiguous_at": iso(lost)},
        now=now,
    )
    env.emu.set_faults(
        {
            "rules": [
                {"kind": "task_failed", "prompt_contains": "their prompt", "code": "DataInspectionFailed"},
                {
                    "endpoint": "create",
                    "kind": "timeout",
                    "hold_seconds": 0.1,
                    "prompt_contains": "mine",
                    "times": 1,
                },
            ]
        }
    )
    theirs = other_jobs_unclaimed_task(env, "their prompt")
    event = start_event("job-mine", prompt="mine")
    with pytest.raises(AmbiguousCreateError):
        submit_app.lambda_handler(event, CTX)
    time.sleep(1.2)  # the task has FAILED; our claim has gone stale

    # When our job reconciles again, then creates its own task
    result = submit_app.lambda_handler(event, CTX)

    # Then the task is left to the create sent last before it appeared (theirs), and ours made its own
    mine = [t["task_id"] for t in env.emu.tasks() if t["prompt"] == "mine"]
    assert result["task_id"] == mine[0] != theirs
    tasks = TaskOwners(env.stack.table)
    assert tasks.owner_of_task(theirs) is None

    # And when the other job reconciles, it adopts its task instead of creating a second one
    creates = env.emu.create_count()
    rival = submit_app.lambda_handler(start_event("job-rival2", prompt="their prompt"), CTX)
    assert rival["task_id"] == theirs and tasks.owner_of_task(theirs) == "job-rival2"
    assert env.emu.create_count() == creates
    assert CONTESTED != "job-rival2"


# -- issue 12: big and shared accounts, deadlines, rotated keys -----------------------------------


def test_reconcile_finds_its_task_among_more_than_a_thousand_on_the_account(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given our create whose answer is lost while another client's task was made at the same moment
    # (two unowned tasks that show no prompt yet: submit cannot tell them apart and waits)
    import time

    monkeypatch.setenv("CREATE_CLAIM_STALE_SECONDS", "1")
    monkeypatch.setenv("PROVIDER_CLOCK_SKEW_SECONDS", "3")  # theirs falls in our window on a slow machine
    wiring.provider_deps.cache_clear()
    env.emu.set_faults({"rules": [{"kind": "drop_after_accept", "prompt_contains": "needle", "times": 1}]})
    env.emu.config.running_seconds = 2.0  # both still run when submit reconciles, even on a slow machine
    event = start_event("job-needle", prompt="needle")
    with wiring_client(env) as other:
        other.create_task(_request("someone else's, at the same moment"))
    with pytest.raises(AmbiguousCreateError):
        submit_app.lambda_handler(event, CTX)
    # and 1,100 tasks of that client made since, within the hour (listed newest first, before ours)
    env.emu.add_tasks(1100, prompt="haystack", created=env.emu.now() + 5, spread_seconds=600)
    time.sleep(2.5)  # our task has SUCCEEDED and shows its prompt; our claim has gone stale

    # When submit runs again
    result = submit_app.lambda_handler(event, CTX)

    # Then it adopts the task its lost create made, and creates no second one
    [ours] = [t for t in env.emu.tasks() if t["prompt"] == "needle"]
    assert result["task_id"] == ours["task_id"]
    assert len([r for r in env.emu.requests() if r["endpoint"] == "create" and r["prompt"] == "needle"]) == 1


def wiring_client(env: Any) -> Any:
    from t2v.dashscope import DashScopeClient

    return DashScopeClient("sk-another-client", base_url=env.emu.base_url)


def _request(prompt: str, **params: Any) -> Any:
    from t2v.families import parse_request

    return parse_request({"prompt": prompt, "size": "640*360", **params})


def test_a_task_adopted_without_proof_is_released_when_it_shows_another_request(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another client's task made at the same moment as our create, which times out before the
    # provider made anything: the lone unowned task of our window is adopted without proof
    monkeypatch.setenv("PROVIDER_CLOCK_SKEW_SECONDS", "3")  # theirs falls in our window on a slow machine
    wiring.provider_deps.cache_clear()
    env.emu.config.pending_seconds, env.emu.config.running_seconds = 0.3, 1.5
    env.emu.set_faults(
        {
            "rules": [
                {
                    "endpoint": "create",
                    "kind": "timeout",
                    "hold_seconds": 0.1,
                    "prompt_contains": "mine",
                    "times": 1,
                }
            ]
        }
    )
    with wiring_client(env) as other:
        theirs = other.create_task(_request("a foreign prompt")).task_id

    # When the job runs to its end
    result = run_job(start_event("job-adopted", prompt="mine"))

    # Then the foreign task's video is never delivered: the job made its own task and stored its video
    [mine] = [t["task_id"] for t in env.emu.tasks() if t["prompt"] == "mine"]
    job = env.stack.job("job-adopted")
    assert (result["status"], job["task_id"]) == ("SUCCEEDED", mine), result
    assert job["task_id"] != theirs
    stored = boto3.client("s3").get_object(Bucket=env.stack.bucket, Key=job["s3_key"])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == job["sha256"]
    media = env.emu.wait_media(mine, timeout=30)
    assert media is not None and hashlib.sha256(media.read_bytes()).hexdigest() == job["sha256"]
    [note] = env.stack.notifications()
    assert note["message"]["task_id"] == mine


def test_a_proof_by_prompt_also_needs_the_request_parameters(env: Any) -> None:
    # Given another client's finished task with our prompt but another duration, made the moment our
    # create was sent; our create times out before the provider made anything
    env.emu.config.pending_seconds, env.emu.config.running_seconds = 0.0, 0.0
    with wiring_client(env) as other:
        theirs = other.create_task(_request("twin", duration=8)).task_id
    env.emu.config.pending_seconds, env.emu.config.running_seconds = 0.2, 0.5
    env.emu.set_faults(
        {
            "rules": [
                {"endpoint": "create", "kind": "timeout", "hold_seconds": 0.1, "prompt_contains": "twin"},
            ]
        }
    )

    # When submit reconciles, the task shows our prompt
    with pytest.raises(AmbiguousCreateError):
        submit_app.lambda_handler(start_event("job-twin", prompt="twin"), CTX)

    # Then its usage (8 s, not 5 s) shows it was another request: it is not taken
    assert env.stack.job("job-twin").get("task_id") is None
    assert theirs


def test_at_the_deadline_the_provider_is_asked_once_before_timing_out(env: Any) -> None:
    # Given a task that finished while the job waited past its deadline
    import time

    poll = submit_app.lambda_handler(start_event("job-last-look"), CTX)
    time.sleep(1.0)
    queries = len([r for r in env.emu.requests() if r["endpoint"] == "query"])

    # When the poll after the deadline runs
    late = status_app.lambda_handler({**poll, "deadline_at": "2000-01-01T00:00:00.000Z"}, CTX)

    # Then it looked once and took the result instead of giving up
    assert late["decision"] == "SUCCEEDED"
    assert len([r for r in env.emu.requests() if r["endpoint"] == "query"]) == queries + 1


def test_at_the_deadline_a_task_still_running_ends_timed_out_after_one_look(env: Any) -> None:
    env.emu.config.pending_seconds = 30.0
    poll = submit_app.lambda_handler(start_event("job-late-running"), CTX)
    late = status_app.lambda_handler({**poll, "deadline_at": "2000-01-01T00:00:00.000Z"}, CTX)
    assert late["decision"] == "TIMED_OUT"
    assert len([r for r in env.emu.requests() if r["endpoint"] == "query"]) == 1


def test_a_key_rotated_while_polling_is_read_again_and_polling_goes_on(env: Any) -> None:
    # Given a job polling with the key cached by the status function
    old = env.stack.api_key
    poll = submit_app.lambda_handler(start_event("job-rotate"), CTX)
    first = status_app.lambda_handler({**poll, "wait_seconds": 0}, CTX)
    assert first["task_status"] in {"PENDING", "RUNNING", "SUCCEEDED"}

    # When the key is rotated: the provider takes only the new one, the secret holds it
    env.emu.config.api_keys = ("sk-rotated-key",)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=env.stack.secret_id, SecretString="sk-rotated-key"
    )
    after = status_app.lambda_handler({**first, "wait_seconds": 0}, CTX)

    # Then the refused cached key is replaced at once and the task is seen
    assert after["task_status"] in {"PENDING", "RUNNING", "SUCCEEDED"}, after
    assert old != "sk-rotated-key"


def test_a_key_refused_even_after_a_refresh_keeps_polling_until_the_deadline(env: Any) -> None:
    # Given a job polling, and then a key the provider refuses (revoked, the new one not stored yet)
    poll = submit_app.lambda_handler(start_event("job-revoked"), CTX)
    env.emu.config.api_keys = ("sk-not-stored-yet",)

    # When it polls
    waiting = status_app.lambda_handler({**poll, "wait_seconds": 0}, CTX)

    # Then the job is not failed: it waits and polls again (its paid task keeps running)
    assert (waiting["decision"], waiting["task_status"]) == ("WAIT", None), waiting
    assert env.stack.job("job-revoked")["status"] not in {"FAILED", "CANCELED", "TIMED_OUT"}
    assert "InvalidApiKey" in env.stack.job("job-revoked")["last_error"]

    # And once the key is fixed, polling finds the task
    env.emu.config.api_keys = None
    assert status_app.lambda_handler({**waiting, "wait_seconds": 0}, CTX)["task_status"] is not None
