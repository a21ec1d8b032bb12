"""Per-caller daily budgets and refunds on DynamoDB (moto over HTTP): each charge and each refund is
one transaction over the job and both day counters, applied once per job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from t2v.adapters.budget import BudgetLedger
from t2v.adapters.jobs_repo import JobsRepository
from t2v.billing import BillingOutcome, Caps, day_key
from t2v.errors import BudgetExceededError
from t2v.jobs import JobRecord, JobStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = "2026-11-30"
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def job(stack: Any, job_id: str, owner: str | None = ALICE) -> JobRecord:
    record, _ = JobsRepository(stack.table).create_if_absent(
        job_id,
        request={"prompt": "p"},
        source="api",
        origin={},
        now=T0,
        deadline_at=T0 + timedelta(hours=2),
        owner=owner,
    )
    return record


def counter(stack: Any, key: str) -> dict[str, int]:
    item = stack.job(key) or {}  # any item of the table, as stored
    return {k: int(v) for k, v in item.items() if k in ("used_seconds", "refunded_seconds")}


def ended(stack: Any, job_id: str, outcome: BillingOutcome) -> JobRecord:
    written = JobsRepository(stack.table).transition(
        job_id, JobStatus.FAILED, now=T0, fields={"billing_outcome": outcome.value}
    )
    return written.job


def test_one_callers_cap_leaves_another_caller_room(stack: Any) -> None:
    # Given a caller cap of 10 s and an account ceiling of 30 s
    ledger, caps = BudgetLedger(stack.table), {"account": 30, "caller": 10}
    ledger.charge_budget(job(stack, "a-1"), day=DAY, seconds=5, caps=Caps(**caps, owner=ALICE), now=T0)
    ledger.charge_budget(job(stack, "a-2"), day=DAY, seconds=5, caps=Caps(**caps, owner=ALICE), now=T0)

    # When Alice asks for more, then Bob does
    with pytest.raises(BudgetExceededError, match="caller"):
        ledger.charge_budget(job(stack, "a-3"), day=DAY, seconds=5, caps=Caps(**caps, owner=ALICE), now=T0)
    ledger.charge_budget(job(stack, "b-1", BOB), day=DAY, seconds=5, caps=Caps(**caps, owner=BOB), now=T0)

    # Then Alice's refused job left no trace on any counter, and Bob's went through
    assert counter(stack, day_key(DAY, ALICE)) == {"used_seconds": 10}
    assert counter(stack, day_key(DAY, BOB)) == {"used_seconds": 5}
    assert counter(stack, day_key(DAY)) == {"used_seconds": 15}
    assert JobsRepository(stack.table).get("a-3").budget_day is None  # type: ignore[union-attr]
    usage = ledger.day_usage(DAY, ALICE)
    assert (usage.caller.used, usage.account.used) == (10, 15)


def test_the_account_ceiling_still_holds_when_every_caller_has_room(stack: Any) -> None:
    ledger = BudgetLedger(stack.table)
    ledger.charge_budget(job(stack, "a-1"), day=DAY, seconds=8, caps=Caps(10, 8, ALICE), now=T0)
    with pytest.raises(BudgetExceededError, match="account"):
        ledger.charge_budget(job(stack, "b-1", BOB), day=DAY, seconds=5, caps=Caps(10, 8, BOB), now=T0)
    assert counter(stack, day_key(DAY, BOB)) == {}
    assert counter(stack, day_key(DAY)) == {"used_seconds": 8}


def test_a_refund_is_given_once_to_both_counters_of_the_day_charged(stack: Any) -> None:
    # Given a charged job that the provider failed
    ledger = BudgetLedger(stack.table)
    ledger.charge_budget(job(stack, "a-1"), day=DAY, seconds=5, caps=Caps(10, 10, ALICE), now=T0)
    done = ended(stack, "a-1", BillingOutcome.PROVIDER_FAILED)
    assert (done.budget_owner, done.billed_seconds) == (ALICE, 5)

    # When it is refunded, again with the same read (a duplicate), and again read afresh (a retry)
    first = ledger.refund(done, now=T0 + timedelta(days=1))  # the next day: back to the charged day
    duplicate = ledger.refund(done, now=T0)
    retried = ledger.refund(JobsRepository(stack.table).get("a-1"), now=T0)  # type: ignore[arg-type]

    # Then only the first gave back, to the job's day, account and owner alike
    assert (first, duplicate, retried) == (True, False, False)
    for key in (day_key(DAY), day_key(DAY, ALICE)):
        assert counter(stack, key) == {"used_seconds": 0, "refunded_seconds": 5}
    assert JobsRepository(stack.table).get("a-1").refunded_at is not None  # type: ignore[union-attr]
    # and the room came back: a new job fits again
    ledger.charge_budget(job(stack, "a-2"), day=DAY, seconds=10, caps=Caps(10, 10, ALICE), now=T0)


def test_a_refund_of_a_job_never_charged_writes_nothing(stack: Any) -> None:
    ledger = BudgetLedger(stack.table)
    uncharged = job(stack, "a-1")
    assert ledger.refund(uncharged, now=T0) is False
    # Even when the caller's read claims a charge the table does not hold, the condition refuses it
    forged = uncharged.model_copy(update={"budget_day": DAY, "billed_seconds": 5})
    assert ledger.refund(forged, now=T0) is False
    assert counter(stack, day_key(DAY)) == {}


def test_a_failure_other_than_a_condition_is_raised(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = BudgetLedger(stack.table)
    error = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")

    def throttled(**_: Any) -> None:
        raise error

    monkeypatch.setattr(ledger._table.meta.client, "transact_write_items", throttled)
    with pytest.raises(ClientError):
        ledger.charge_budget(job(stack, "a-1"), day=DAY, seconds=5, caps=Caps(10), now=T0)
