"""The push hand-over on DynamoDB (moto over HTTP): each side's one write returns what the other wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from t2v.adapters.jobs_repo import JobsRepository
from t2v.adapters.push_records import PushRecords
from t2v.capacity import MAX_PUSH_WAKES
from t2v.jobs import JobStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def push_with_job(stack: Any, job_id: str = "job-1") -> PushRecords:
    JobsRepository(stack.table).create_if_absent(
        job_id, request={"prompt": "p"}, source="test", origin={}, now=T0, deadline_at=T0 + timedelta(hours=2)
    )
    return PushRecords(stack.table)


def test_a_push_first_is_found_by_the_park(stack: Any) -> None:
    repo = push_with_job(stack)
    recorded = repo.record_hint("job-1", event_id="e1", now=T0)
    assert (recorded.duplicate, recorded.finished, recorded.token) == (False, False, None)
    parked = repo.park("job-1", token="tok-1", now=T0 + timedelta(seconds=1))
    assert parked is not None and parked.hint_pending and not parked.finished


def test_a_park_first_is_found_by_the_push(stack: Any) -> None:
    repo = push_with_job(stack)
    parked = repo.park("job-1", token="tok-1", now=T0)
    assert parked is not None and not parked.hint_pending
    assert repo.record_hint("job-1", event_id="e1", now=T0 + timedelta(seconds=1)).token == "tok-1"


def test_a_status_turn_after_the_push_consumes_it(stack: Any) -> None:
    repo = push_with_job(stack)
    repo.record_hint("job-1", event_id="e1", now=T0)
    JobsRepository(stack.table).update_fields("job-1", {"checked_at": "2026-11-30T12:00:01.000Z"}, now=T0)
    parked = repo.park("job-1", token="tok-2", now=T0 + timedelta(seconds=2))
    assert parked is not None and not parked.hint_pending
    # A push during that turn (after it began) is still news to the next park.
    repo.record_hint("job-1", event_id="e2", now=T0 + timedelta(seconds=3))
    parked = repo.park("job-1", token="tok-3", now=T0 + timedelta(seconds=4))
    assert parked is not None and parked.hint_pending


def test_duplicates_finished_jobs_and_missing_jobs(stack: Any) -> None:
    repo = push_with_job(stack)
    assert not repo.record_hint("job-1", event_id="e1", now=T0).duplicate
    assert repo.record_hint("job-1", event_id="e1", now=T0).duplicate
    JobsRepository(stack.table).transition("job-1", JobStatus.CANCELED, now=T0)
    assert repo.record_hint("job-1", event_id="e2", now=T0).finished
    parked = repo.park("job-1", token="tok", now=T0)
    assert parked is not None and parked.finished
    assert repo.park("no-such-job", token="tok", now=T0) is None
    item = boto3.resource("dynamodb").Table(stack.table).get_item(Key={"pk": "job-1"})["Item"]
    assert int(item["pushes"]) == 2 and item["push_events"] == {"e1", "e2"}


def test_a_flood_of_distinct_pushes_is_bounded_and_the_item_stays_small(stack: Any) -> None:
    # Given a parked wait, When 300 pushes with distinct ids (60 KB of ids) arrive (once ~1,600 ids passed DynamoDB's
    # 400 KB item limit, which moto does not enforce, so the size is measured here)
    repo = push_with_job(stack)
    repo.park("job-1", token="tok", now=T0)
    outcomes = [repo.record_hint("job-1", event_id=f"flood-{i:05d}-" + "x" * 200, now=T0) for i in range(300)]
    # Then only the first MAX_PUSH_WAKES are recorded (each may wake); the rest are spent, not duplicates
    assert sum(1 for o in outcomes if o.token == "tok" and not o.spent) == MAX_PUSH_WAKES
    assert all(o.spent and o.token is None for o in outcomes[MAX_PUSH_WAKES:])
    item = boto3.resource("dynamodb").Table(stack.table).get_item(Key={"pk": "job-1"})["Item"]
    assert int(item["pushes"]) == MAX_PUSH_WAKES and len(item["push_events"]) == MAX_PUSH_WAKES
    assert len(json.dumps(item, default=str).encode()) < 8 * 1024
    # The job keeps taking writes (its end, its outcome).
    JobsRepository(stack.table).transition("job-1", JobStatus.SUCCEEDED, now=T0)
