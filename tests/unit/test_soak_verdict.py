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
