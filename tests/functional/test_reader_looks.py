"""A read of one job looks at the provider (issue 22): what the reader sees, how often the provider
is asked, and that the schedule's seconds stay the schedule's. In-memory fakes."""

from __future__ import annotations

import pytest
from t2v.errors import RetryableProviderError
from t2v.jobs import JobRecord, JobStatus
from t2v.schedule import Policy
from t2v.usecases.look import LOOK_EVERY_SECONDS, LookDeps, look_limit, looked
from t2v_bench.ledger import MemoryPollStats

from tests.fakes import FakeClock, FakeJobs, FakeProvider

POLICY = Policy(budget_qps=16.0, push=True)


def world(status: str = "SUBMITTED", task: str = "PENDING") -> tuple[LookDeps, FakeProvider, FakeClock]:
    clock, jobs, provider = FakeClock(), FakeJobs(), FakeProvider()
    jobs.create_if_absent(
        "job-1", request={"prompt": "p"}, source="api", origin={}, now=clock(), deadline_at=clock()
    )
    jobs.items["job-1"].update(task_id="t-1")
    jobs.transition("job-1", JobStatus.SUBMITTED, now=clock())
    jobs.items["job-1"]["status"] = status
    provider.add_task("t-1", task)
    deps = LookDeps(
        repo=jobs, ledger=MemoryPollStats(), provider=lambda: provider, policy=POLICY, clock=clock
    )
    return deps, provider, clock


def read(deps: LookDeps) -> JobRecord:
    job = deps.repo.get("job-1")
    assert job is not None
    return looked(job, deps)


def test_a_read_shows_pending_then_running_as_they_happen_and_running_enters_the_history() -> None:
    deps, provider, clock = world()
    assert read(deps).status == JobStatus.PENDING
    provider.finish("t-1", "RUNNING", times={})
    clock.advance(LOOK_EVERY_SECONDS)
    job = read(deps)
    assert job.status == JobStatus.RUNNING
    assert [h.status for h in job.history] == ["ACCEPTED", "SUBMITTED", "PENDING", "RUNNING"]
    recorded = deps.repo.get("job-1")
    assert recorded is not None and recorded.status == JobStatus.RUNNING  # recorded, not just shown


def test_at_most_one_look_per_job_every_few_seconds_however_many_read() -> None:
    deps, provider, clock = world()
    for _ in range(10):  # ten readers within the same second
        read(deps)
    assert provider.queries == 1
    clock.advance(LOOK_EVERY_SECONDS - 0.5)
    read(deps)
    assert provider.queries == 1
    clock.advance(1)
    read(deps)
    assert provider.queries == 2


def test_a_look_only_takes_a_spare_second_and_books_it_in_the_ledger() -> None:
    deps, provider, clock = world()
    ledger = deps.ledger
    assert isinstance(ledger, MemoryPollStats)
    second = int(clock().timestamp())
    ledger.slots[second] = look_limit(POLICY)  # the schedule filled the second up to the readers' share
    assert read(deps).status == JobStatus.SUBMITTED  # shows what it has
    assert provider.queries == 0 and ledger.slots[second] == look_limit(POLICY)
    clock.advance(LOOK_EVERY_SECONDS + 1)
    assert read(deps).status == JobStatus.PENDING
    assert ledger.slots[int(clock().timestamp())] == 1  # booked like any query
    assert look_limit(POLICY) < POLICY.booking_limit(hinted=False)  # readers leave the schedule room


@pytest.mark.parametrize("status", ["ACCEPTED", "RUNNING", "DOWNLOADING", "SUCCEEDED", "CANCELED"])
def test_no_look_where_a_look_changes_nothing(status: str) -> None:
    deps, provider, _ = world(status=status, task="RUNNING")
    assert read(deps).status == JobStatus(status)
    assert provider.queries == 0


def test_a_finished_task_is_left_to_the_workflow_and_no_news_is_no_failure() -> None:
    deps, provider, clock = world(task="SUCCEEDED")
    assert read(deps).status == JobStatus.SUBMITTED  # the push (or the safety net) ends it
    provider.fail = RetryableProviderError("GET: ConnectError")
    clock.advance(LOOK_EVERY_SECONDS)
    assert read(deps).status == JobStatus.SUBMITTED


def test_cancellable_says_whether_cancel_can_work() -> None:
    assert [s.value for s in JobStatus if s.is_cancelable] == ["ACCEPTED", "WAITING", "SUBMITTED", "PENDING"]


def test_a_look_at_a_task_the_job_let_go_meanwhile_moves_nothing() -> None:
    # Given a reader who read the job bound to t-1, which the provider shows RUNNING
    deps, provider, _ = world(task="RUNNING")
    seen = deps.repo.get("job-1")
    assert seen is not None
    # When, before the look writes, the job released t-1 (another client's) and took its own t-2
    deps.repo.items["job-1"].update(task_id="t-2")  # type: ignore[attr-defined]
    provider.add_task("t-2", "PENDING")
    shown = looked(seen, deps)
    # Then the job is not moved by t-1's status
    recorded = deps.repo.get("job-1")
    assert recorded is not None and recorded.status == JobStatus.SUBMITTED
    assert shown.status == JobStatus.SUBMITTED
