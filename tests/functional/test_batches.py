"""The batch use cases (t2v.usecases.batches) on DynamoDB and S3 (moto in-process, no network), with
a recording starter and notifiers: a file read once and accepted or refused as a whole, lines recorded
quietly, a cancel that races the recording, collection once every line ended, cancel and its answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from t2v.adapters.batches_repo import BatchesRepository
from t2v.adapters.jobs_table import plain
from t2v.adapters.storage import VideoStore
from t2v.batches import BatchFile, BatchRecord, BatchStatus
from t2v.billing import Caps
from t2v.contract import Ended
from t2v.errors import BatchNotCancelableError, BatchNotFoundError
from t2v.jobs import JobRecord, JobStatus
from t2v.request import InvalidRequestError
from t2v.usecases.announce import AnnounceDeps, end_job
from t2v.usecases.batches import (
    BatchDeps,
    batch_jobs,
    cancel_batch,
    collect_batch,
    list_batches,
    open_api_batch,
    open_batch,
    read_batch,
    record_lines,
)
from t2v.wiring import Repositories

from tests.fakes import FakeClock, FakeExecutions, FakeNotifier
from tests.integration.conftest import load_template

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
TABLE = "jobs"
BUCKET = "videos"
KEY = "prompts/batch.jsonl"
DEFAULTS = {"size": "1280*720", "duration": 5}
# A line of 5 s, a blank line, a line of 10 s, a refused line (seed out of range): lines 1, 3, 4.
GOOD_FILE = "\n".join(
    [
        json.dumps({"prompt": "a fox", "size": "640*360"}),
        "",
        json.dumps({"prompt": "a cat", "size": "640*360", "duration": 10}),
        json.dumps({"prompt": "a dog", "seed": -1}),
    ]
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # an integration run may have set it
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        props = load_template()["Resources"]["JobsTable"]["Properties"]
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode=props["BillingMode"],
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield


@dataclass
class World:
    deps: BatchDeps
    repos: Repositories
    clock: FakeClock
    starter: FakeExecutions
    batch_notes: FakeNotifier  # the batch's own announcement
    line_notes: FakeNotifier  # the lines' announcements (quiet lines: none)
    canceled: list[str] = field(default_factory=list)  # the lines cancel_job was called for

    @property
    def day(self) -> str:
        return f"{self.clock():%Y-%m-%d}"

    def upload(self, body: str, key: str = KEY) -> BatchFile:
        version = boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())["VersionId"]
        return BatchFile(BUCKET, key, version, version)

    def open(self, body: str = GOOD_FILE, *, owner: str = ALICE) -> tuple[str, BatchFile]:
        file = self.upload(body)
        batch = open_batch(file, owner=owner, source="s3", notify_lines=False, deps=self.deps)
        return batch.batch_id, file

    def batch(self, batch_id: str) -> BatchRecord:
        batch = self.deps.batches.get(batch_id)
        assert batch is not None
        return batch

    def job(self, job_id: str) -> JobRecord:
        job = self.repos.jobs.get(job_id)
        assert job is not None, job_id
        return job

    def all_jobs(self) -> list[dict[str, Any]]:
        items = boto3.resource("dynamodb").Table(TABLE).scan(ConsistentRead=True)["Items"]
        return [plain(i) for i in items if i.get("kind") == "job"]

    def object(self, key: str) -> bytes:
        body: bytes = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def items(self, batch_id: str) -> list[dict[str, Any]]:
        """The Map's input: the lines file read_batch wrote."""
        return [json.loads(t) for t in self.object(self.deps.lines_key(batch_id)).decode().splitlines()]

    def used(self, owner: str | None = None) -> int:
        usage = self.repos.budget.day_usage(self.day, owner or ALICE)
        return usage.account.used if owner is None else usage.caller.used

    def succeed(self, job_id: str) -> None:
        """The line's video was stored: its workflow's way to SUCCEEDED."""
        self.repos.jobs.transition(job_id, JobStatus.DOWNLOADING, now=self.clock(), fields={"task_id": "t"})
        end = self.repos.jobs.transition(
            job_id,
            JobStatus.SUCCEEDED,
            now=self.clock(),
            fields={"s3_key": f"videos/{job_id}.mp4", "billing_outcome": "SUCCEEDED"},
        )
        assert end.done

    def fail(self, job_id: str) -> None:
        """The line failed before its task was created (its seconds are refunded)."""
        end_job(job_id, Ended(status=JobStatus.FAILED, code="Boom", message="it broke"), self.deps.announce)


def make_world(batches: BatchesRepository | None = None, *, account: int = 1000, caller: int = 100) -> World:
    clock = FakeClock()
    repos = Repositories.over(TABLE)
    line_notes, batch_notes, starter = FakeNotifier(), FakeNotifier(), FakeExecutions()
    announce = AnnounceDeps(
        repo=repos.jobs,
        announcements=repos.announcements,
        notifier=line_notes,
        clock=clock,
        sleep=clock.advance,
        refunds=repos.budget,
    )
    deps = BatchDeps(
        batches=batches or BatchesRepository(repos.table),
        announce=announce,
        store=VideoStore(),
        notifier=batch_notes,
        starter=starter,
        bucket=BUCKET,
        defaults=DEFAULTS,
        caps=Caps(account, caller),
        clock=clock,
    )
    world = World(deps, repos, clock, starter, batch_notes, line_notes)

    def cancel_job(job: JobRecord) -> None:  # as a user's DELETE of a queued job would
        world.canceled.append(job.job_id)
        end_job(job.job_id, Ended(status=JobStatus.CANCELED, code="Canceled", message="canceled"), announce)

    deps.cancel_job = cancel_job
    return world


@pytest.fixture
def world(aws: None) -> World:
    return make_world()


def accepted(world: World, body: str = GOOD_FILE) -> tuple[str, BatchFile]:
    batch_id, file = world.open(body)
    assert read_batch(batch_id, world.deps)["accepted"] is True
    return batch_id, file


# -- the doors ------------------------------------------------------------------------------------


def test_open_batch_records_it_reading_and_starts_its_workflow_once(world: World) -> None:
    file = world.upload(GOOD_FILE)
    first = open_batch(file, owner=ALICE, source="s3", notify_lines=False, deps=world.deps)
    again = open_batch(file, owner=ALICE, source="s3", notify_lines=False, deps=world.deps)
    assert first == again and first.status == BatchStatus.READING and first.batch_id == file.batch_id
    assert world.starter.started == {file.batch_id: {"batch_id": file.batch_id}}


def test_open_api_batch_takes_a_jsonl_of_the_callers_own_folder(world: World) -> None:
    folder = "inputs/123456789012/alice/"
    world.upload(GOOD_FILE, key=f"{folder}b.jsonl")
    for key, rule in [
        (f"{folder}b.txt", "must name a .jsonl"),
        ("inputs/123456789012/bob/b.jsonl", "under your own folder"),
        (f"{folder}../bob/b.jsonl", "under your own folder"),
        (f"{folder}missing.jsonl", "no object"),
    ]:
        with pytest.raises(InvalidRequestError, match=rule):
            open_api_batch(
                key, version=None, notify_lines=True, principal=ALICE, folder=folder, deps=world.deps
            )
    batch = open_api_batch(
        f"{folder}b.jsonl", version=None, notify_lines=True, principal=ALICE, folder=folder, deps=world.deps
    )
    assert (batch.status, batch.owner, batch.source, batch.notify_lines) == (
        BatchStatus.READING,
        ALICE,
        "api",
        True,
    )
    assert list(world.starter.started) == [batch.batch_id]


# -- read ------------------------------------------------------------------------------------------


def test_read_batch_accepts_a_good_file_writes_its_lines_and_reserves_its_seconds(world: World) -> None:
    batch_id, _ = world.open()

    answer = read_batch(batch_id, world.deps)
    again = read_batch(batch_id, world.deps)  # the step retried

    assert (
        answer
        == again
        == {"accepted": True, "lines": {"bucket": BUCKET, "key": f"results/{batch_id}.lines.jsonl"}}
    )
    items = world.items(batch_id)
    assert [i["line"] for i in items] == [1, 3, 4]
    assert [i.get("seconds") for i in items] == [5, 10, None]
    assert items[0]["request"]["prompt"] == "a fox" and "seed" in items[2]["error"]
    batch = world.batch(batch_id)
    assert batch.status == BatchStatus.RUNNING
    assert (batch.total, batch.valid, batch.refused, batch.last_line) == (3, 2, 1, 4)
    assert (batch.video_seconds, batch.reserved_seconds, batch.budget_day) == (15, 15, world.day)
    assert (world.used(), world.used(ALICE)) == (15, 15)  # reserved once, on both counters
    assert world.batch_notes.messages == [] and world.all_jobs() == []


def test_read_batch_refuses_a_garbage_file_with_one_announcement_and_no_jobs(world: World) -> None:
    batch_id, _ = world.open("garbage\n{nope\n" + json.dumps({"prompt": "fine"}) + "\nalso bad\n")

    answer = read_batch(batch_id, world.deps)
    read_batch(batch_id, world.deps)  # the step retried
    collect_batch(batch_id, world.deps)  # and a collect that runs anyway

    assert answer["accepted"] is False
    batch = world.batch(batch_id)
    assert batch.status == BatchStatus.REFUSED and batch.error_code == "BatchRefused"
    assert batch.error_message is not None
    assert batch.error_message.startswith(f"{KEY}: 3 of the first 4 lines are refused")
    assert f"the first: {KEY} line 1: invalid JSON" in batch.error_message
    [message] = world.batch_notes.messages
    assert world.batch_notes.events == [message]
    assert (message["status"], message["notification_id"]) == ("REFUSED", f"{batch_id}/REFUSED")
    assert message["error"] == {"code": "BatchRefused", "message": batch.error_message}
    assert world.all_jobs() == [] and world.used() == 0


def test_read_batch_refuses_a_file_over_the_budget_naming_it(aws: None) -> None:
    world = make_world(account=12)
    batch_id, _ = world.open()
    assert read_batch(batch_id, world.deps)["accepted"] is False
    batch = world.batch(batch_id)
    assert batch.status == BatchStatus.REFUSED and batch.error_message is not None
    assert "the batch needs 15 billed video seconds; the account's daily budget of 12 has 12 left" in (
        batch.error_message
    )
    assert world.used() == 0 and len(world.batch_notes.messages) == 1


class CancelBeforeAccept(BatchesRepository):
    """A cancel lands after read_batch read the batch READING and before it accepts it."""

    def accept(self, batch_id: str, **kwargs: Any) -> BatchRecord:
        self.set_status(batch_id, BatchStatus.CANCELING, now=kwargs["now"], allowed=(BatchStatus.READING,))
        return super().accept(batch_id, **kwargs)


def test_a_cancel_before_the_accept_keeps_the_files_numbers_and_reserves_nothing(aws: None) -> None:
    world = make_world(CancelBeforeAccept(Repositories.over(TABLE).table))
    batch_id, _ = world.open()

    assert read_batch(batch_id, world.deps)["accepted"] is True  # the Map drains, starting nothing

    batch = world.batch(batch_id)
    assert batch.status == BatchStatus.CANCELING and world.used() == 0
    assert (batch.total, batch.valid, batch.refused, batch.last_line) == (3, 2, 1, 4)
    assert record_lines(batch_id, world.items(batch_id), world.deps) == {"starts": []}
    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "CANCELED"}
    [message] = world.batch_notes.messages
    assert message["lines"] == {"total": 3, "valid": 2, "refused": 1}
    assert message["counts"] == {"SUCCEEDED": 0, "FAILED": 1, "CANCELED": 2, "TIMED_OUT": 0}


# -- record ----------------------------------------------------------------------------------------


def test_record_lines_records_refused_lines_quietly_and_starts_the_valid_ones(world: World) -> None:
    batch_id, file = accepted(world)

    answer = record_lines(batch_id, world.items(batch_id), world.deps)

    ids = [file.job_id(1), file.job_id(3)]
    assert [s["job_id"] for s in answer["starts"]] == ids
    first = answer["starts"][0]["input"]
    assert first["job_id"] == ids[0] and first["request"]["prompt"] == "a fox" and first["source"] == "s3"
    assert first["origin"] == {
        "bucket": BUCKET,
        "key": KEY,
        "version": file.version,
        "line": 1,
        "batch_id": batch_id,
    }
    refused = world.job(file.job_id(4))
    assert refused.status == JobStatus.FAILED and refused.error_code == "InvalidRequest"
    assert refused.quiet and refused.notified_at is not None and refused.event_sent_at is not None  # settled
    assert refused.owner == ALICE and refused.batch_line == 4 and refused.billed_seconds is None
    for job_id, seconds in zip(ids, (5, 10), strict=True):
        job = world.job(job_id)
        assert (job.status, job.batch_id, job.quiet, job.owner) == (JobStatus.ACCEPTED, batch_id, True, ALICE)
        assert (job.budget_day, job.billed_seconds, job.budget_owner) == (world.day, seconds, ALICE)
    assert world.line_notes.messages == [] and world.line_notes.events == []
    batch = world.batch(batch_id)
    assert batch.counts["FAILED"] == 1 and batch.active == sorted(ids)

    again = record_lines(batch_id, world.items(batch_id), world.deps)  # the Map child retried
    assert again == answer
    assert world.batch(batch_id).counts["FAILED"] == 1 and world.line_notes.messages == []
    assert world.used() == 15  # a line's job never charges again: its batch reserved it


def test_a_child_run_again_after_its_lines_ended_neither_restarts_nor_counts_them_again(world: World) -> None:
    # Given a child whose lines ran and ended (one succeeded, one failed, the refused one FAILED)
    batch_id, file = accepted(world)
    record_lines(batch_id, world.items(batch_id), world.deps)
    world.succeed(file.job_id(1))
    world.fail(file.job_id(3))
    before = world.batch(batch_id)
    assert before.active == [] and (before.counts["SUCCEEDED"], before.counts["FAILED"]) == (1, 2)

    # When the Map runs that child again (a retried step, a redrive)
    again = record_lines(batch_id, world.items(batch_id), world.deps)

    # Then it starts nothing, puts nothing back in flight, and the live counts stay exact
    assert again == {"starts": []}
    after = world.batch(batch_id)
    assert after.active == [] and after.counts == before.counts
    assert collect_batch(batch_id, world.deps)["done"] is True
    assert (world.batch(batch_id).counts["SUCCEEDED"], world.batch(batch_id).counts["FAILED"]) == (1, 2)


def test_record_lines_of_a_canceling_batch_starts_and_records_nothing(world: World) -> None:
    batch_id, _ = accepted(world)
    cancel_batch(batch_id, ALICE, False, world.deps)
    assert record_lines(batch_id, world.items(batch_id), world.deps) == {"starts": []}
    assert world.all_jobs() == [] and world.batch(batch_id).active == []


class CancelAfterAddActive(BatchesRepository):
    """A cancel lands after record_lines read the batch RUNNING and marked its lines active."""

    def add_active(self, batch_id: str, job_ids: list[str], *, now: datetime) -> None:
        super().add_active(batch_id, job_ids, now=now)
        self.set_status(batch_id, BatchStatus.CANCELING, now=now, allowed=(BatchStatus.RUNNING,))


def test_a_cancel_racing_record_lines_ends_its_new_jobs_canceled_and_starts_nothing(aws: None) -> None:
    world = make_world(CancelAfterAddActive(Repositories.over(TABLE).table))
    batch_id, file = accepted(world)

    answer = record_lines(batch_id, world.items(batch_id), world.deps)

    assert answer == {"starts": []}
    for line in (1, 3):
        job = world.job(file.job_id(line))
        assert (job.status, job.error_code) == (JobStatus.CANCELED, "BatchCanceled")
        assert job.refunded_at is not None  # no task was created: its seconds go back
    assert world.job(file.job_id(4)).status == JobStatus.FAILED
    batch = world.batch(batch_id)
    assert batch.counts == {"SUCCEEDED": 0, "FAILED": 1, "CANCELED": 2, "TIMED_OUT": 0} and batch.active == []
    assert world.line_notes.messages == [] and world.used() == 0

    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "CANCELED"}
    assert world.used() == 0  # nothing given back twice: the lines' refunds gave it all back
    assert world.batch(batch_id).released_seconds == 0


# -- collect ---------------------------------------------------------------------------------------


def results(world: World, batch_id: str) -> list[dict[str, Any]]:
    return [json.loads(t) for t in world.object(f"results/{batch_id}.jsonl").decode().splitlines()]


def test_collect_waits_for_active_lines_then_writes_exact_results_and_announces_once(world: World) -> None:
    batch_id, file = accepted(world)
    record_lines(batch_id, world.items(batch_id), world.deps)

    assert collect_batch(batch_id, world.deps) == {"done": False, "wait_seconds": 30, "active": 2}
    world.succeed(file.job_id(1))
    assert collect_batch(batch_id, world.deps) == {"done": False, "wait_seconds": 30, "active": 1}
    assert world.batch(batch_id).status == BatchStatus.RUNNING and world.batch_notes.messages == []
    world.fail(file.job_id(3))  # refunded: 10 of the 15 reserved go back

    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "COMPLETED"}
    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "COMPLETED"}  # retried

    assert results(world, batch_id) == [
        {
            "line": 1,
            "job_id": file.job_id(1),
            "status": "SUCCEEDED",
            "error": None,
            "video_key": f"videos/{file.job_id(1)}.mp4",
            "billed_seconds": 5,
        },
        {
            "line": 3,
            "job_id": file.job_id(3),
            "status": "FAILED",
            "error": {"code": "Boom", "message": "it broke"},
            "video_key": None,
            "billed_seconds": 0,
        },
        {
            "line": 4,
            "job_id": file.job_id(4),
            "status": "FAILED",
            "error": {"code": "InvalidRequest", "message": world.items(batch_id)[2]["error"]},
            "video_key": None,
            "billed_seconds": 0,
        },
    ]
    counts = {"SUCCEEDED": 1, "FAILED": 2, "CANCELED": 0, "TIMED_OUT": 0}
    summary = json.loads(world.object(f"results/{batch_id}.summary.json"))
    assert summary["counts"] == counts and summary["lines"] == {"total": 3, "valid": 2, "refused": 1}
    assert (summary["billed_seconds"], summary["reserved_seconds"], summary["released_seconds"]) == (5, 15, 0)
    batch = world.batch(batch_id)
    assert (batch.status, batch.counts, batch.released_seconds, batch.active) == (
        BatchStatus.COMPLETED,
        counts,
        0,
        [],
    )
    assert (world.used(), world.used(ALICE)) == (5, 5)
    [message] = world.batch_notes.messages
    assert world.batch_notes.events == [message]
    assert (message["status"], message["counts"]) == ("COMPLETED", counts)
    assert message["results"] == {
        "bucket": BUCKET,
        "key": f"results/{batch_id}.jsonl",
        "summary_key": f"results/{batch_id}.summary.json",
    }
    assert world.line_notes.messages == []  # quiet lines: the batch announced them


def test_collect_gives_back_the_seconds_of_lines_never_started_once(world: World) -> None:
    batch_id, file = accepted(world)
    record_lines(batch_id, world.items(batch_id)[:1], world.deps)  # the other child failed every retry
    world.succeed(file.job_id(1))

    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "COMPLETED"}
    collect_batch(batch_id, world.deps)

    assert [
        (r["line"], r["job_id"], r["status"], r["error"] and r["error"]["code"])
        for r in results(world, batch_id)
    ] == [
        (1, file.job_id(1), "SUCCEEDED", None),
        (3, None, "FAILED", "LineNotStarted"),
        (4, None, "FAILED", "InvalidRequest"),
    ]
    batch = world.batch(batch_id)
    assert batch.released_seconds == 10 and batch.counts["FAILED"] == 2
    assert (world.used(), world.used(ALICE)) == (5, 5)  # 15 reserved, 10 given back, once


def test_collect_after_a_crash_between_a_lines_end_and_its_count_counts_it_once(world: World) -> None:
    batch_id, file = accepted(world)
    record_lines(batch_id, world.items(batch_id), world.deps)
    # The line's end is written and the invocation dies before its count (and its refund)
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"pk": file.job_id(1)},
        UpdateExpression="SET #s = :s, error_code = :c, error_message = :m",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "TIMED_OUT", ":c": "DeadlineExceeded", ":m": "too late"},
    )
    world.fail(file.job_id(3))
    assert world.batch(batch_id).active == [file.job_id(1)]  # ended, not counted

    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "COMPLETED"}
    collect_batch(batch_id, world.deps)

    batch = world.batch(batch_id)
    assert batch.counts == {"SUCCEEDED": 0, "FAILED": 2, "CANCELED": 0, "TIMED_OUT": 1}
    assert batch.ended == batch.total == 3 and batch.active == []
    assert [r["status"] for r in results(world, batch_id)] == ["TIMED_OUT", "FAILED", "FAILED"]
    assert len(world.batch_notes.messages) == 1


# -- cancel ----------------------------------------------------------------------------------------


def test_cancel_cancels_queued_lines_and_answers_again_without_error(world: World) -> None:
    batch_id, file = accepted(world)
    record_lines(batch_id, world.items(batch_id), world.deps)
    waiting = file.job_id(3)
    assert world.repos.jobs.transition(waiting, JobStatus.WAITING, now=world.clock()).done

    with pytest.raises(BatchNotFoundError):
        cancel_batch(batch_id, BOB, False, world.deps)  # another caller's batch: not found
    canceling = cancel_batch(batch_id, ALICE, False, world.deps)

    assert canceling.status == BatchStatus.CANCELING and canceling.canceled_at == world.clock()
    assert sorted(world.canceled) == sorted([file.job_id(1), waiting])
    for line in (1, 3):
        assert world.job(file.job_id(line)).status == JobStatus.CANCELED
    assert canceling.active == [] and canceling.counts["CANCELED"] == 2

    again = cancel_batch(batch_id, ALICE, False, world.deps)
    assert again.status == BatchStatus.CANCELING and len(world.canceled) == 2  # nothing canceled twice

    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "CANCELED"}
    assert cancel_batch(batch_id, BOB, True, world.deps).status == BatchStatus.CANCELED  # an admin, after
    assert world.used() == 0  # the canceled lines' seconds were given back once
    [message] = world.batch_notes.messages
    assert message["counts"] == {"SUCCEEDED": 0, "FAILED": 1, "CANCELED": 2, "TIMED_OUT": 0}


def test_cancel_of_a_completed_batch_is_refused(world: World) -> None:
    batch_id, file = accepted(world)
    record_lines(batch_id, world.items(batch_id), world.deps)
    world.succeed(file.job_id(1))
    world.succeed(file.job_id(3))
    assert collect_batch(batch_id, world.deps)["status"] == "COMPLETED"

    with pytest.raises(BatchNotCancelableError, match="COMPLETED"):
        cancel_batch(batch_id, ALICE, False, world.deps)
    assert world.batch(batch_id).status == BatchStatus.COMPLETED and world.canceled == []


def test_cancel_before_the_file_is_read_ends_every_line_canceled(world: World) -> None:
    batch_id, _ = world.open()
    assert cancel_batch(batch_id, ALICE, False, world.deps).status == BatchStatus.CANCELING

    assert read_batch(batch_id, world.deps)["accepted"] is True
    assert record_lines(batch_id, world.items(batch_id), world.deps) == {"starts": []}
    assert collect_batch(batch_id, world.deps) == {"done": True, "status": "CANCELED"}

    assert [(r["line"], r["status"]) for r in results(world, batch_id)] == [
        (1, "CANCELED"),
        (3, "CANCELED"),
        (4, "FAILED"),
    ]
    assert world.batch(batch_id).total == 3 and world.used() == 0 and world.all_jobs() == []


def test_the_batchs_jobs_page_in_line_order_and_a_cursor_not_given_is_refused_naming_it(world: World) -> None:
    batch_id, _ = accepted(world)
    record_lines(batch_id, world.items(batch_id), world.deps)
    batch = world.batch(batch_id)
    first, cursor = batch_jobs(batch, world.deps, limit=2, cursor=None)
    rest, end = batch_jobs(batch, world.deps, limit=2, cursor=cursor)
    assert [j.batch_line for j in first + rest] == [1, 3, 4] and end is None
    # A cursor is a line number the listing gave: anything else (or one past the file) reads nothing
    for bad in ("-5", "abc", "1e3", "", str(batch.last_line + 1), "9" * 30):
        with pytest.raises(InvalidRequestError, match="cursor"):
            batch_jobs(batch, world.deps, limit=5, cursor=bad)
    # A batch listing's cursor: forged, or another owner's, never reads
    _, mine = list_batches(ALICE, world.deps, limit=1, cursor=None)
    for forged in ("eyJ4IjoxfQ==", "not base64!", mine or ""):
        with pytest.raises(InvalidRequestError, match="cursor"):
            list_batches("arn:aws:iam::123456789012:user/bob", world.deps, limit=5, cursor=forged)


def test_with_line_notifications_on_each_line_is_announced_too(world: World) -> None:
    # BatchLineNotifications: Enabled (or notify_lines in the POST): lines are not quiet
    file = world.upload(GOOD_FILE)
    batch = open_batch(file, owner=ALICE, source="api", notify_lines=True, deps=world.deps)
    assert read_batch(batch.batch_id, world.deps)["accepted"] is True
    record_lines(batch.batch_id, world.items(batch.batch_id), world.deps)
    refused = world.job(file.job_id(4))
    assert refused.status == JobStatus.FAILED and not refused.quiet
    assert [m["job_id"] for m in world.line_notes.messages] == [file.job_id(4)]
    assert not world.job(file.job_id(1)).quiet
