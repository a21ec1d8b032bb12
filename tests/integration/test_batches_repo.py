"""The batch record on DynamoDB (moto over HTTP): created once, accepted once with its seconds reserved
in the same transaction, each line's end counted once, its lines' creates refused once it is canceled,
ended once with its unused seconds given back once, listed per owner newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from t2v.adapters.batches_repo import BatchesRepository
from t2v.adapters.jobs_repo import JobsRepository
from t2v.adapters.jobs_table import plain
from t2v.batches import BatchRecord, BatchStatus
from t2v.billing import Caps
from t2v.errors import BatchCanceledError, BudgetExceededError, InvalidCursorError
from t2v.jobs import JobStatus

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = "2026-12-07"
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
FILE = {"bucket": "b", "key": "prompts/x.jsonl", "version": "v1", "version_id": None}
NUMBERS = {"total": 3, "valid": 3, "refused": 0, "last_line": 3, "video_seconds": 15}


def new_batch(
    repo: BatchesRepository, batch_id: str = "batch-1", *, owner: str | None = ALICE, now: datetime = T0
) -> BatchRecord:
    batch, created = repo.create_if_absent(
        batch_id, owner=owner, source="s3", file=FILE, notify_lines=False, execution=batch_id, now=now
    )
    assert created
    return batch


def running(repo: BatchesRepository, batch_id: str = "batch-1", *, seconds: int = 15) -> BatchRecord:
    new_batch(repo, batch_id)
    return repo.accept(
        batch_id, fields=NUMBERS, day=DAY, seconds=seconds, caps=Caps(1000, 100, ALICE), now=T0
    )


def line_job(stack: Any, job_id: str, batch_id: str = "batch-1") -> None:
    JobsRepository(stack.table).create_if_absent(
        job_id,
        request={"prompt": job_id},
        source="s3",
        origin={},
        now=T0,
        deadline_at=T0 + timedelta(days=1),
        owner=ALICE,
        extra={"batch_id": batch_id, "batch_line": 1, "quiet": True},
    )


def item(stack: Any, pk: str) -> dict[str, Any]:
    got = boto3.resource("dynamodb").Table(stack.table).get_item(Key={"pk": pk}, ConsistentRead=True)
    return plain(got.get("Item") or {})


def test_create_if_absent_is_idempotent_and_keeps_the_first_record(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    first = new_batch(repo)
    again, created = repo.create_if_absent(
        "batch-1", owner=BOB, source="api", file={"bucket": "other"}, notify_lines=True, execution="x", now=T0
    )
    assert not created
    assert again == first == repo.get("batch-1")
    assert (again.status, again.owner, again.source, again.file) == (
        BatchStatus.READING,
        ALICE,
        "s3",
        {"bucket": "b", "key": "prompts/x.jsonl", "version": "v1"},  # None values are not stored
    )
    assert repo.get("batch-none") is None and repo.get("job-1") is None


def test_accept_moves_reading_to_running_once_and_reserves_on_both_counters(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    new_batch(repo)

    batch = repo.accept("batch-1", fields=NUMBERS, day=DAY, seconds=15, caps=Caps(100, 20, ALICE), now=T0)

    assert batch.status == BatchStatus.RUNNING
    assert (batch.total, batch.valid, batch.last_line, batch.video_seconds) == (3, 3, 3, 15)
    assert (batch.reserved_seconds, batch.budget_day, batch.started_at) == (15, DAY, T0)
    usage = repo.day_usage(DAY, ALICE)
    assert (usage.account.used, usage.caller.used) == (15, 15)

    # A retried accept (the read step run again) reserves nothing more and changes nothing
    later = T0 + timedelta(minutes=5)
    again = repo.accept("batch-1", fields=NUMBERS, day=DAY, seconds=15, caps=Caps(100, 20, ALICE), now=later)
    assert again.status == BatchStatus.RUNNING and again.started_at == T0
    usage = repo.day_usage(DAY, ALICE)
    assert (usage.account.used, usage.caller.used) == (15, 15)


def test_accept_without_caps_reserves_nothing(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    new_batch(repo)
    batch = repo.accept("batch-1", fields=NUMBERS, day=DAY, seconds=15, caps=None, now=T0)
    assert batch.status == BatchStatus.RUNNING and batch.reserved_seconds == 15
    assert repo.budget_used(DAY) == 0


def test_accept_over_the_account_budget_is_refused_naming_needs_and_left_and_writes_nothing(
    stack: Any,
) -> None:
    repo = BatchesRepository(stack.table)
    running(repo, "batch-1", seconds=15)  # 15 of the account's 40 used
    new_batch(repo, "batch-2")

    with pytest.raises(BudgetExceededError) as refused:
        repo.accept("batch-2", fields=NUMBERS, day=DAY, seconds=30, caps=Caps(40, 0, ALICE), now=T0)

    assert str(refused.value) == (
        "the batch needs 30 billed video seconds; the account's daily budget of 40 has 25 left today: "
        "split the file or raise the budget"
    )
    batch = repo.get("batch-2")
    assert batch is not None and batch.status == BatchStatus.READING and batch.reserved_seconds == 0
    assert batch.total == 0 and batch.budget_day is None
    usage = repo.day_usage(DAY, ALICE)
    assert (usage.account.used, usage.caller.used) == (15, 15)


def test_accept_over_the_callers_budget_is_refused_naming_needs_and_left_and_writes_nothing(
    stack: Any,
) -> None:
    repo = BatchesRepository(stack.table)
    running(repo, "batch-1", seconds=15)  # 15 of alice's 20 used
    new_batch(repo, "batch-2")

    with pytest.raises(BudgetExceededError) as refused:
        repo.accept("batch-2", fields=NUMBERS, day=DAY, seconds=10, caps=Caps(1000, 20, ALICE), now=T0)

    assert str(refused.value) == (
        "the batch needs 10 billed video seconds; the caller's daily budget of 20 has 5 left today: "
        "split the file or raise the budget"
    )
    batch = repo.get("batch-2")
    assert batch is not None and batch.status == BatchStatus.READING
    usage = repo.day_usage(DAY, ALICE)
    assert (usage.account.used, usage.caller.used) == (15, 15)  # the account's counter untouched too


def test_a_lines_end_is_counted_once_however_often_it_is_written(stack: Any) -> None:
    repo, jobs = BatchesRepository(stack.table), JobsRepository(stack.table)
    running(repo)
    repo.add_active("batch-1", ["job-a", "job-b", "job-c"], now=T0)
    for job_id in ("job-a", "job-b"):
        line_job(stack, job_id)

    done = jobs.transition("job-a", JobStatus.FAILED, now=T0)
    retried = jobs.transition("job-a", JobStatus.FAILED, now=T0)  # a retry of the same end
    other = jobs.transition("job-a", JobStatus.CANCELED, now=T0)  # a late, different end: refused
    jobs.transition("job-b", JobStatus.CANCELED, now=T0)
    repo.settle_line(done.job)  # collect's healing pass, run again
    repo.settle_line(retried.job)

    assert done.done and not retried.done and not other.done
    batch = repo.get("batch-1")
    assert batch is not None
    assert batch.counts == {"SUCCEEDED": 0, "FAILED": 1, "CANCELED": 1, "TIMED_OUT": 0}
    assert batch.active == ["job-c"]  # the line not ended yet stays active
    assert batch.ended == 2


def test_settle_line_counts_an_end_whose_count_was_lost_once(stack: Any) -> None:
    # Given a line that ended, and whose count did not happen (a crash between the two writes)
    repo, jobs = BatchesRepository(stack.table), JobsRepository(stack.table)
    running(repo)
    repo.add_active("batch-1", ["job-a"], now=T0)
    line_job(stack, "job-a")
    boto3.resource("dynamodb").Table(stack.table).update_item(
        Key={"pk": "job-a"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "CANCELED"},
    )
    job = jobs.get("job-a")
    assert job is not None and job.status == JobStatus.CANCELED
    # When it is settled twice, Then it is counted once
    repo.settle_line(job)
    repo.settle_line(job)
    batch = repo.get("batch-1")
    assert batch is not None and batch.counts["CANCELED"] == 1 and batch.active == []


def test_settle_line_ignores_a_running_line_and_a_job_of_no_batch(stack: Any) -> None:
    repo, jobs = BatchesRepository(stack.table), JobsRepository(stack.table)
    running(repo)
    repo.add_active("batch-1", ["job-a"], now=T0)
    line_job(stack, "job-a")
    job = jobs.get("job-a")
    assert job is not None
    repo.settle_line(job)  # ACCEPTED: not an end
    batch = repo.get("batch-1")
    assert batch is not None and batch.active == ["job-a"] and batch.ended == 0


def test_a_lines_create_is_claimed_while_running_and_refused_once_canceling(stack: Any) -> None:
    repo, jobs = BatchesRepository(stack.table), JobsRepository(stack.table)
    running(repo)
    line_job(stack, "job-a")
    line_job(stack, "job-b")
    stale = T0 - timedelta(minutes=5)

    claimed = jobs.claim_create("job-a", now=T0, stale_before=stale, batch_id="batch-1")
    assert claimed.done and claimed.job.create_claimed_at == T0

    moved, canceling = repo.set_status(
        "batch-1", BatchStatus.CANCELING, now=T0, allowed=(BatchStatus.READING, BatchStatus.RUNNING)
    )
    assert moved and canceling is not None and canceling.status == BatchStatus.CANCELING
    assert canceling.canceled_at == T0

    with pytest.raises(BatchCanceledError, match="batch-1"):
        jobs.claim_create("job-b", now=T0, stale_before=stale, batch_id="batch-1")
    job_b = item(stack, "job-b")
    assert "create_claimed_at" not in job_b and "create_attempts" not in job_b
    assert job_b["status"] == "ACCEPTED"


def test_a_second_claim_of_a_line_is_refused_by_its_own_claim_not_by_the_batch(stack: Any) -> None:
    repo, jobs = BatchesRepository(stack.table), JobsRepository(stack.table)
    running(repo)
    line_job(stack, "job-a")
    stale = T0 - timedelta(minutes=5)
    assert jobs.claim_create("job-a", now=T0, stale_before=stale, batch_id="batch-1").done
    again = jobs.claim_create("job-a", now=T0, stale_before=stale, batch_id="batch-1")
    assert not again.done and again.job.create_claimed_at == T0
    assert item(stack, "job-a")["create_attempts"] == 1


def test_set_status_refuses_a_move_from_a_status_not_allowed(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    new_batch(repo)
    moved, current = repo.set_status("batch-1", BatchStatus.CANCELING, now=T0, allowed=(BatchStatus.RUNNING,))
    assert not moved and current is not None and current.status == BatchStatus.READING


def test_finish_ends_once_and_gives_back_once(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    batch = running(repo, seconds=15)
    counts = {"SUCCEEDED": 1, "FAILED": 0, "CANCELED": 2, "TIMED_OUT": 0}
    later = T0 + timedelta(hours=1)
    fields = {"results_key": "results/batch-1.jsonl"}

    ended = repo.finish(batch, BatchStatus.COMPLETED, counts=counts, release=10, fields=fields, now=later)
    again = repo.finish(batch, BatchStatus.CANCELED, counts={}, release=10, fields={}, now=T0)  # a retry

    assert ended.status == BatchStatus.COMPLETED and ended.finished_at == later
    assert ended.counts == counts and ended.released_seconds == 10
    assert ended.results_key == "results/batch-1.jsonl"
    assert again == ended  # nothing of the second finish was written
    usage = repo.day_usage(DAY, ALICE)
    assert (usage.account.used, usage.caller.used) == (5, 5)
    assert (usage.account.refunded, usage.caller.refunded) == (10, 10)


def test_finish_of_a_batch_refused_before_writes_nothing(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    batch = new_batch(repo)
    repo.set_status("batch-1", BatchStatus.REFUSED, now=T0, allowed=(BatchStatus.READING,))
    ended = repo.finish(
        batch.model_copy(update={"budget_day": DAY}),
        BatchStatus.COMPLETED,
        counts={},
        release=5,
        fields={},
        now=T0,
    )
    assert ended.status == BatchStatus.REFUSED and ended.released_seconds == 0
    assert repo.budget_used(DAY) == 0 and repo.day_usage(DAY, ALICE).account.refunded == 0


def test_mark_is_set_once(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    new_batch(repo)
    assert repo.mark("batch-1", "notified_at", now=T0)
    assert not repo.mark("batch-1", "notified_at", now=T0 + timedelta(seconds=1))
    batch = repo.get("batch-1")
    assert batch is not None and batch.notified_at == T0 and batch.event_sent_at is None


def test_list_for_pages_an_owners_batches_newest_first(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    for n in range(3):
        new_batch(repo, f"batch-a{n}", owner=ALICE, now=T0 + timedelta(minutes=n))
    new_batch(repo, "batch-b0", owner=BOB, now=T0 + timedelta(minutes=10))
    new_batch(repo, "batch-n0", owner=None, now=T0 + timedelta(minutes=11))

    page, cursor = repo.list_for(ALICE, limit=2, cursor=None)
    assert [b.batch_id for b in page] == ["batch-a2", "batch-a1"] and cursor is not None
    rest, end = repo.list_for(ALICE, limit=2, cursor=cursor)
    assert [b.batch_id for b in rest] == ["batch-a0"] and end is None

    assert [b.batch_id for b in repo.list_for(BOB, limit=10, cursor=None)[0]] == ["batch-b0"]
    assert [b.batch_id for b in repo.list_for(None, limit=10, cursor=None)[0]] == ["batch-n0"]
    with pytest.raises(InvalidCursorError):
        repo.list_for(ALICE, limit=2, cursor="not-a-cursor")


def test_jobs_reads_more_than_a_hundred_ids_and_only_jobs(stack: Any) -> None:
    repo = BatchesRepository(stack.table)
    running(repo)
    table = boto3.resource("dynamodb").Table(stack.table)
    with table.batch_writer() as writer:
        for n in range(130):
            writer.put_item(
                Item={"pk": f"job-{n:03d}", "kind": "job", "status": "ACCEPTED", "created_at": T0.isoformat()}
            )
    asked = [f"job-{n:03d}" for n in range(140)] + ["batch#batch-1", f"budget#{DAY}"]

    found = repo.jobs(asked)

    assert sorted(found) == [f"job-{n:03d}" for n in range(130)]
    assert {j.status for j in found.values()} == {JobStatus.ACCEPTED}
    assert repo.jobs([]) == {}


@pytest.mark.parametrize(
    ("caps", "which", "cap"),
    [(Caps(10, 0, ALICE), "account", 10), (Caps(1000, 10, ALICE), "caller", 10)],
)
def test_accept_of_more_than_a_whole_days_budget_is_refused_on_a_fresh_day(
    stack: Any, caps: Caps, which: str, cap: int
) -> None:
    # No counter of the day exists yet: the transaction's room condition alone would let it through
    repo = BatchesRepository(stack.table)
    new_batch(repo)
    with pytest.raises(BudgetExceededError) as refused:
        repo.accept("batch-1", fields=NUMBERS, day=DAY, seconds=15, caps=caps, now=T0)
    assert str(refused.value).startswith(
        f"the batch needs 15 billed video seconds; the {which}'s daily budget of {cap} has {cap} left today"
    )
    batch = repo.get("batch-1")
    assert batch is not None and batch.status == BatchStatus.READING
    assert item(stack, f"budget#{DAY}") == {} and item(stack, f"budget#{DAY}#{ALICE}") == {}
