"""Job writes on DynamoDB (moto over HTTP) answer with the job they leave: the one they made, or the
one that refused them, so that no use case reads the job again after writing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from t2v.adapters.budget import BudgetLedger
from t2v.adapters.jobs_repo import JobsRepository
from t2v.adapters.task_owners import TaskOwners
from t2v.billing import Caps
from t2v.errors import BudgetExceededError
from t2v.jobs import JobStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = "2026-11-30"


def repo_with_jobs(stack: Any, *job_ids: str) -> JobsRepository:
    repo = JobsRepository(stack.table)
    for job_id in job_ids:
        repo.create_if_absent(
            job_id,
            request={"prompt": "p"},
            source="test",
            origin={},
            now=T0,
            deadline_at=T0 + timedelta(hours=2),
        )
    return repo


def test_binding_a_task_answers_with_the_bound_job_or_the_one_that_refused(stack: Any) -> None:
    repo_with_jobs(stack, "job-1", "job-2")
    tasks = TaskOwners(stack.table)

    bound = tasks.record_task("job-1", task_id="t-1", request_id="rq-1", now=T0)
    again = tasks.record_task("job-1", task_id="t-other", request_id="rq-2", now=T0)  # the job has a task
    taken = tasks.record_task("job-2", task_id="t-1", request_id="rq-3", now=T0)  # the task has a job

    assert bound.done and (bound.job.status, bound.job.task_id) == (JobStatus.SUBMITTED, "t-1")
    assert bound.job.request_ids == ["rq-1"]
    assert not again.done and (again.job.job_id, again.job.task_id) == ("job-1", "t-1")
    assert not taken.done and (taken.job.job_id, taken.job.status, taken.job.task_id) == (
        "job-2",
        JobStatus.ACCEPTED,
        None,
    )
    assert tasks.owner_of_task("t-1") == "job-1"


def test_a_job_charged_since_it_was_read_is_neither_charged_again_nor_refused(stack: Any) -> None:
    # Given a job read before a concurrent attempt charged it, on a day whose budget it filled
    repo = repo_with_jobs(stack, "job-1")
    budget = BudgetLedger(stack.table)
    read_before = repo.get("job-1")
    assert read_before is not None
    budget.charge_budget(read_before, day=DAY, seconds=5, caps=Caps(5), now=T0)

    # When the attempt holding the older read charges it
    assert budget.charge_budget(read_before, day=DAY, seconds=5, caps=Caps(5), now=T0)

    # Then the day holds the job's seconds once, and another job is still refused
    assert budget.budget_used(DAY) == 5
    other = repo_with_jobs(stack, "job-2").get("job-2")
    assert other is not None
    with pytest.raises(BudgetExceededError):
        budget.charge_budget(other, day=DAY, seconds=5, caps=Caps(5), now=T0)
