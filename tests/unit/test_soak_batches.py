"""The soak's verdict on batches (t2v_sandbox.soak_batches.BatchJudge), from made-up evidence."""

from __future__ import annotations

import json
from typing import Any

from t2v_sandbox.soak_batches import BAD_KEYS, BATCH_DETAIL_TYPE, BatchJudge, PlannedBatch, garbage_files

BUCKET = "bucket"


def planned(kind: str = "s3", lines: int = 3, expect: str = "COMPLETED") -> PlannedBatch:
    batch = PlannedBatch(
        f"{kind}.jsonl", kind, {n: f"prompt {n}" for n in range(1, lines + 1)}, expect=expect
    )
    batch.place(BUCKET, f"prompts/{kind}.jsonl", "v1")
    return batch


def record(batch: PlannedBatch, status: str = "COMPLETED") -> dict[str, Any]:
    line_status = "CANCELED" if status == "CANCELED" else "SUCCEEDED"
    return {
        f"ended_{line_status}": len(batch.lines),
        "pk": f"batch#{batch.batch_id}",
        "batch_id": batch.batch_id,
        "status": status,
        "results_bucket": BUCKET,
        "results_key": f"results/{batch.batch_id}.jsonl",
        "summary_key": f"results/{batch.batch_id}.summary.json",
    }


def jobs_of(batch: PlannedBatch, status: str = "SUCCEEDED") -> dict[str, dict[str, Any]]:
    return {
        job_id: {"pk": job_id, "status": status, "batch_id": batch.batch_id, "batch_line": n}
        for n, job_id in batch.job_ids.items()
    }


def results(batch: PlannedBatch, lines: list[int] | None = None, status: str = "SUCCEEDED") -> bytes:
    numbers = list(batch.lines) if lines is None else lines
    return "".join(
        json.dumps({"line": n, "job_id": batch.job_ids[n], "status": status}) + "\n" for n in numbers
    ).encode()


def announcement(batch: PlannedBatch, status: str = "COMPLETED") -> dict[str, Any]:
    line_status = "CANCELED" if status == "CANCELED" else "SUCCEEDED"
    return {
        "message": {
            "batch_id": batch.batch_id,
            "notification_id": f"{batch.batch_id}/{status}",
            "status": status,
            "counts": {
                "SUCCEEDED": 0,
                "FAILED": 0,
                "CANCELED": 0,
                "TIMED_OUT": 0,
                line_status: len(batch.lines),
            },
        }
    }


def event(batch: PlannedBatch, status: str = "COMPLETED") -> dict[str, Any]:
    return {"detail-type": BATCH_DETAIL_TYPE, "detail": announcement(batch, status)["message"]}


def judge(
    batch: PlannedBatch,
    *,
    status: str = "COMPLETED",
    body: bytes | None = None,
    messages: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    tasks: dict[str, list[dict[str, Any]]] | None = None,
    creates: dict[str, float] | None = None,
    kills: int = 0,
) -> dict[str, Any]:
    rec = record(batch, status)
    line_status = "CANCELED" if status == "CANCELED" else "SUCCEEDED"
    objects = {
        rec["results_key"]: results(batch, status=line_status) if body is None else body,
        rec["summary_key"]: b"{}",
    }
    verdict = BatchJudge(
        {batch.batch_id: rec},
        lambda _bucket, key: objects.get(key),
        [batch],
        messages=[announcement(batch, status)] if messages is None else messages,
        events=[event(batch, status)] if events is None else events,
        jobs=jobs_of(batch, line_status),
        tasks=tasks or {},
        creates=creates or {},
        batch_kills=kills,
    ).run()
    return {key: verdict.summary[key] for key in (*BAD_KEYS, "redelivered_batch_announcements")} | {
        "wrong_status": verdict.counts["wrong_status"]
    }


ZERO = dict.fromkeys(BAD_KEYS, 0) | {"redelivered_batch_announcements": 0, "wrong_status": 0}


def test_a_batch_ended_once_with_one_result_per_line_and_one_announcement_is_right() -> None:
    assert judge(planned()) == ZERO


def test_a_line_missing_from_the_results_and_a_line_listed_twice_are_counted() -> None:
    batch = planned()
    assert judge(batch, body=results(batch, [1, 3]))["batch_result_missing"] == 1
    assert judge(batch, body=results(batch, [1, 2, 2, 3]))["batch_result_doubled"] == 2
    assert judge(batch, body=None)["batch_result_missing"] == 0


def test_counts_that_differ_from_the_results_file_are_a_wrong_status() -> None:
    batch = planned()
    # A line counted twice on the record (ended_SUCCEEDED 4 for 3 lines) while the results list 3.
    assert judge(batch, body=results(batch, [1, 2, 3]) + b"")["wrong_status"] == 0
    doubled = results(batch, [1, 2, 3, 3])
    assert judge(batch, body=doubled)["wrong_status"] == 2  # the record's and the announcement's counts


def test_a_batch_not_ended_is_counted() -> None:
    batch = planned()
    assert judge(batch, status="RUNNING", messages=[], events=[])["batch_not_ended"] == 1


def test_two_announcements_are_wrong_unless_a_killed_batch_worker_explains_the_copy() -> None:
    batch = planned()
    twice = [announcement(batch), announcement(batch)]
    assert judge(batch, messages=twice)["batch_announcements_wrong"] == 1
    assert judge(batch, messages=twice, kills=1) == ZERO | {"redelivered_batch_announcements": 1}
    # Two different notification ids are never a copy; none at all is wrong too.
    other = [announcement(batch), announcement(batch, "CANCELED")]
    assert judge(batch, messages=other, kills=5)["batch_announcements_wrong"] == 1
    assert judge(batch, messages=[], events=[])["batch_announcements_wrong"] == 2


def test_a_quiet_line_announced_on_its_own_is_wrong() -> None:
    batch = planned()
    loud = [announcement(batch), {"message": {"job_id": batch.job_ids[2], "status": "SUCCEEDED"}}]
    assert judge(batch, messages=loud)["batch_announcements_wrong"] == 1


def test_a_line_with_two_tasks_ran_twice_and_a_task_after_the_cancel_is_counted() -> None:
    batch = planned("cancel", expect="CANCELED")
    batch.canceled_at = 1000.0
    tasks = {
        "prompt 1": [{"task_id": "t1"}, {"task_id": "t1b"}],
        "prompt 2": [{"task_id": "t2"}],
        "prompt 3": [{"task_id": "t3"}],
    }
    creates = {"t1": 990.0, "t1b": 995.0, "t2": 999.9, "t3": 1000.2}
    found = judge(batch, status="CANCELED", tasks=tasks, creates=creates)
    assert found == ZERO | {"batch_line_ran_twice": 1, "batch_line_after_cancel": 1}


def test_a_canceled_batch_that_completed_anyway_has_the_wrong_status() -> None:
    batch = planned("cancel", expect="CANCELED")
    batch.canceled_at = 1000.0
    assert judge(batch)["wrong_status"] == 1


def test_garbage_files_are_planned_refused() -> None:
    files = garbage_files("run", 7)
    assert [b.expect for b, _ in files] == ["REFUSED", "REFUSED"]
    noise, prose = (body for _, body in files)
    try:
        noise.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:  # pragma: no cover - the noise must not be text
        raise AssertionError("the noise file is UTF-8")
    assert all(not line.strip().startswith(b"{") for line in prose.splitlines())


def test_a_function_given_its_own_kill_rate_is_killed_at_that_rate_and_the_others_at_the_common_one(
    tmp_path: Any,
) -> None:
    from t2v_sandbox.lambda_runner import FunctionSpec, LambdaRunner, RunnerSettings

    def spec(name: str) -> FunctionSpec:
        return FunctionSpec(name, f"arn:{name}", "app.handler", "python3.13", 3.0, 128, "1", tmp_path, (), ())

    settings = RunnerSettings(
        python="python",
        moto_url="http://moto",
        region="us-east-1",
        work_dir=tmp_path,
        access_key="k",
        secret_key="s",
        kill_rate=0.0,
        kill_rates={"BatchFunction": 1.0},
    )
    runner = LambdaRunner(settings)
    assert runner._kill_plan(spec("t2v-sandbox-BatchFunction")) is not None
    assert runner._kill_plan(spec("t2v-sandbox-SubmitFunction")) is None
