"""The soak's verdict on announcements: one SNS message and one event per job, except the documented
window (an announcer killed after publishing and before marking it), which costs a claim each."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from t2v_sandbox.soak import Evidence, Judge, PlannedJob, Verdict

JOB = "job-1"


def judge_of(messages: list[dict[str, Any]], events: list[dict[str, Any]]) -> Judge:
    # The verdict's checks read only the evidence; the sandbox-facing constructor is not needed here.
    judge = Judge.__new__(Judge)
    judge.evidence = Evidence(
        records={}, tasks={}, creates={}, messages={JOB: messages}, events={JOB: events}, by_id={}
    )
    judge.counts = Counter()
    return judge


def sns(notification_id: str = f"{JOB}/CANCELED") -> dict[str, Any]:
    return {"message": {"job_id": JOB, "notification_id": notification_id, "status": "CANCELED"}}


def event() -> dict[str, Any]:
    return {"detail": {"job_id": JOB, "status": "CANCELED"}}


def verdict_for(judge: Judge, claims: int | None) -> Verdict:
    verdict = Verdict(PlannedJob(1, "api", "cancel", "p", {}), "CANCELED", "CANCELED")
    record = {"pk": JOB, "status": "CANCELED", **({"notify_attempts": claims} if claims else {})}
    judge.check_notifications(verdict, record)
    return verdict


def test_one_message_and_one_event_are_right() -> None:
    judge = judge_of([sns()], [event()])

    verdict = verdict_for(judge, claims=1)

    assert verdict.problems == []
    assert +judge.counts == Counter()


def test_a_second_copy_after_a_second_claim_is_the_crash_window_not_a_duplicate() -> None:
    # Given the first announcer died after SNS took its message; the next claim published again
    judge = judge_of([sns(), sns()], [event(), event()])

    verdict = verdict_for(judge, claims=2)

    assert verdict.problems == []
    assert judge.counts["redelivered_notifications"] == 1
    assert judge.counts["redelivered_events"] == 1
    assert judge.counts["duplicate_notifications"] == judge.counts["duplicate_events"] == 0


@pytest.mark.parametrize(
    ("messages", "events", "claims", "key"),
    [
        ([sns(), sns()], [event()], 1, "duplicate_notifications"),  # two publishes under one claim
        ([sns(), sns(), sns()], [event()], 2, "duplicate_notifications"),  # more copies than claims
        ([sns(), sns(f"{JOB}/FAILED")], [event()], 2, "duplicate_notifications"),  # two outcomes
        ([sns()], [event(), event()], None, "duplicate_events"),
        ([], [event()], 1, "missing_notifications"),
        ([sns()], [], 1, "missing_events"),
    ],
)
def test_anything_else_is_bad(
    messages: list[dict[str, Any]], events: list[dict[str, Any]], claims: int | None, key: str
) -> None:
    judge = judge_of(messages, events)

    verdict = verdict_for(judge, claims=claims)

    assert verdict.problems
    assert judge.counts[key] >= 1


def test_the_budget_verdict_counts_refunds_missed_and_given_twice() -> None:
    from t2v_sandbox.soak import budget_verdict

    owner = "arn:aws:iam::123456789012:user/soak"
    day = "2026-11-23"

    def job(job_id: str, status: str, outcome: str, **fields: Any) -> dict[str, Any]:
        return {
            "pk": job_id,
            "status": status,
            "task_id": f"t-{job_id}",
            "budget_day": day,
            "billed_seconds": 5,
            "budget_owner": owner,
            "billing_outcome": outcome,
            **fields,
        }

    records = [
        job("ok", "SUCCEEDED", "succeeded"),
        job("refunded", "FAILED", "provider_failed", refunded_at="2026-11-23T10:00:00.000Z"),
        job("missed", "CANCELED", "canceled_pending"),
    ]
    # Counters as they should be: 15 charged, 5 given back, on the account's day and the owner's
    right = {f"budget#{day}": (10, 5), f"budget#{day}#{owner}": (10, 5)}
    verdict = budget_verdict(records, right)
    assert (verdict["refund_missed"], verdict["refund_twice"], verdict["budget_undercounted"]) == (1, 0, 0)
    assert verdict["overcount"] == 0

    # A refund applied twice to the owner's counter shows as given back twice and under its charges
    twice = {f"budget#{day}": (5, 5), f"budget#{day}#{owner}": (0, 10)}
    verdict = budget_verdict(records[:2], twice)
    assert (verdict["refund_missed"], verdict["refund_twice"], verdict["budget_undercounted"]) == (0, 1, 1)

    # A job with a task and no charge is counted too
    assert budget_verdict([{"pk": "x", "status": "RUNNING", "task_id": "t"}], {})["uncharged_tasks"] == 1


# -- the push flood (t2v_sandbox.soak_flood)


def flooded_verdict(
    record: dict[str, Any], expected: str, code: str | None, *, flooded: bool = True
) -> Judge:
    judge = judge_of([], [])
    job = PlannedJob(1, "api", "plain", "p", {}, flooded=flooded)
    judge.check_flood(Verdict(job, expected, record["status"]), record, expected, code)
    return judge


def test_a_flooded_job_that_ends_as_the_provider_says_is_right() -> None:
    judge = flooded_verdict({"status": "SUCCEEDED", "push_events": {"e-1", "e-2"}}, "SUCCEEDED", None)
    assert +judge.counts == Counter()
    judge = flooded_verdict(
        {"status": "FAILED", "error_code": "InternalError.Algo"}, "FAILED", "InternalError.Algo"
    )
    assert +judge.counts == Counter()


@pytest.mark.parametrize(
    ("record", "expected", "code"),
    [
        ({"status": "TIMED_OUT", "error_code": "Timeout"}, "SUCCEEDED", None),  # the polls spent by wakes
        ({"status": "FAILED", "error_code": "MaxPolls"}, "SUCCEEDED", None),
        ({"status": "FAILED", "error_code": "MaxPolls"}, "FAILED", "InternalError.Algo"),  # another reason
    ],
)
def test_a_flooded_job_ended_otherwise_than_the_provider_says_was_ended_by_pushes(
    record: dict[str, Any], expected: str, code: str | None
) -> None:
    judge = flooded_verdict(record, expected, code)
    assert +judge.counts == Counter({"ended_by_pushes": 1})


def test_more_push_ids_than_the_bound_is_unbounded_and_only_flooded_jobs_are_judged_so() -> None:
    from t2v.capacity import MAX_PUSH_WAKES

    many = {"status": "SUCCEEDED", "push_events": {f"e-{n}" for n in range(MAX_PUSH_WAKES + 1)}}
    assert +flooded_verdict(many, "SUCCEEDED", None).counts == Counter({"unbounded_pushes": 1})
    assert +flooded_verdict({"status": "TIMED_OUT"}, "SUCCEEDED", None, flooded=False).counts == Counter()
    assert (
        +flooded_verdict({"status": "CANCELED"}, "SUCCEEDED", None).counts == Counter()
    )  # not a push's doing


def test_a_tasks_flood_has_distinct_ids_past_the_bound_duplicates_no_ids_and_forged_tokens() -> None:
    from t2v.capacity import MAX_PUSH_WAKES
    from t2v_sandbox.soak_flood import DUPLICATES, FORGED, STATUS_TEXTS, pushes_for

    pushes = pushes_for("t-1", "run1")
    right = [body for body, token in pushes if token]
    ids = [body.get("id") for body in right]
    assert len({i for i in ids if i}) > MAX_PUSH_WAKES
    assert max(Counter(i for i in ids if i).values()) == DUPLICATES + 1
    assert sorted(b["data"]["task_status"] for b in right if "id" not in b) == sorted(STATUS_TEXTS)
    assert sum(1 for _, token in pushes if not token) == FORGED
    assert {b["data"]["task_id"] for b, _ in pushes} == {"t-1"}
