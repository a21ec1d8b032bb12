"""The ports the use cases talk through, and the dependencies submit and poll share."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from t2v.billing import Caps, DayUsage
from t2v.config import ProviderSettings
from t2v.errors import PipelineError
from t2v.images import ImageSource
from t2v.jobs import HintRecorded, JobRecord, JobStatus, Parked, Write
from t2v.listing import JobListing, JobsRead
from t2v.provider import CanceledTask, CreatedTask, TaskInfo
from t2v.request import RequestBase
from t2v.schedule import GenerationTier, TierHistory
from t2v.times import utcnow
from t2v.usecases.capacity import Governor


class ProviderClient(Protocol):
    def create_task(self, request: RequestBase, urls: Mapping[str, str] | None = None) -> CreatedTask: ...
    def get_task(self, task_id: str) -> TaskInfo: ...
    def cancel_task(self, task_id: str) -> CanceledTask: ...
    def iter_tasks(
        self, *, start_time: datetime, end_time: datetime, model_name: str | None = None
    ) -> Iterable[TaskInfo]: ...


class JobStore(Protocol):
    """The job items (`t2v.adapters.jobs_repo.JobsRepository`): records, lifecycle moves, create claims,
    listings."""

    def get(self, job_id: str) -> JobRecord | None: ...
    def create_if_absent(
        self,
        job_id: str,
        *,
        request: dict[str, Any],
        source: str,
        origin: dict[str, Any],
        now: datetime,
        deadline_at: datetime,
        execution: str | None = None,
        owner: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[JobRecord, bool]: ...
    def transition(
        self,
        job_id: str,
        new: JobStatus,
        *,
        now: datetime,
        fields: dict[str, Any] | None = None,
        expect: dict[str, str | None] | None = None,
    ) -> Write: ...
    def update_fields(self, job_id: str, fields: dict[str, Any], *, now: datetime) -> JobRecord: ...
    def claim_create(
        self, job_id: str, *, now: datetime, stale_before: datetime, batch_id: str | None = None
    ) -> Write: ...
    def claim_look(self, job_id: str, *, now: datetime, before: datetime) -> bool: ...
    def release_claim(self, job_id: str) -> None: ...
    def unbound_creates(self, *, since: datetime) -> list[JobRecord]: ...
    def sweep_candidates(self, *, since: datetime, untouched_since: datetime) -> list[JobRecord]: ...
    def list_jobs(
        self,
        listing: JobListing | None = None,
        *,
        limit: int = 20,
        cursor: str | None = None,
        owner: str | None = None,
        read: int | None = None,
    ) -> JobsRead: ...


class TaskLookup(Protocol):
    """Which job owns a provider task (a push needs no more)."""

    def owner_of_task(self, task_id: str) -> str | None: ...


class TaskOwnerStore(TaskLookup, Protocol):
    """The `task#` items, bound and released with their job (`t2v.adapters.task_owners.TaskOwners`)."""

    def contest_task(self, task_id: str, *, job_id: str, now: datetime) -> None: ...
    def record_task(self, job_id: str, *, task_id: str, request_id: str | None, now: datetime) -> Write: ...
    def release_task(self, job_id: str, *, task_id: str, now: datetime) -> bool: ...


class AnnouncementStore(Protocol):
    """The announcement claim and marks on a job (`t2v.adapters.announcements.AnnouncementClaims`)."""

    def claim_notification(
        self, job_id: str, *, token: str, now: datetime, stale_before: datetime
    ) -> Write: ...
    def mark_notified(self, job_id: str, *, now: datetime, message_id: str | None = None) -> bool: ...


class PushStore(Protocol):
    """The push hints and parked wait on a job (`t2v.adapters.push_records.PushRecords`)."""

    def record_hint(self, job_id: str, *, event_id: str, now: datetime) -> HintRecorded: ...
    def park(self, job_id: str, *, token: str, now: datetime) -> Parked | None: ...


class RefundStore(Protocol):
    """Gives an ended job's charge back, once (`t2v.adapters.budget.BudgetLedger.refund`)."""

    def refund(self, job: JobRecord, *, now: datetime) -> bool: ...


class BudgetStore(RefundStore, Protocol):
    """The `budget#<day>` and `budget#<day>#<owner>` counters (`t2v.adapters.budget.BudgetLedger`)."""

    def charge_budget(self, job: JobRecord, *, day: str, seconds: int, caps: Caps, now: datetime) -> bool: ...
    def budget_used(self, day: str) -> int: ...
    def day_usage(self, day: str, owner: str) -> DayUsage: ...


class IdempotencyStore(Protocol):
    """The `idem#<key>` items (`t2v.adapters.idempotency.IdempotencyKeys`)."""

    def remember_idempotency_key(self, key: str, job_id: str, *, now: datetime) -> str: ...


class PollStatsLike(Protocol):
    def active_jobs(self) -> int: ...
    def history(self, tier: GenerationTier) -> TierHistory: ...
    def record_timing(self, tier: GenerationTier, *, queue: float, run: float, limit: int) -> None: ...
    def take(self, second: int, limit: int) -> bool: ...
    def release(self, second: int) -> None: ...


class NotifierLike(Protocol):
    def publish(self, message: dict[str, Any]) -> str: ...
    def put_event(self, message: dict[str, Any]) -> None: ...


@dataclass
class ProviderDeps:
    """What submit, reconcile and poll use: the jobs, their tasks, the day's budget, the provider and the
    shared poll schedule."""

    repo: JobStore
    tasks: TaskOwnerStore
    budget: BudgetStore
    client: Callable[[], ProviderClient]
    settings: ProviderSettings
    stats: PollStatsLike  # no default: a wiring slip must fail, not drop the account-wide query budget
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    # Reads the provider key again, past its cache (the provider refused the cached one).
    refresh_key: Callable[[], None] = lambda: None
    # The capacity governor (t2v.usecases.capacity); None: no governor (the use-case tests' fakes).
    capacity: Governor | None = None
    # Reads input images' heads and signs their GETs (t2v.adapters.images); None: requests name none.
    images: ImageSource | None = None


def job_or_fail(repo: JobStore, job_id: str) -> JobRecord:
    job = repo.get(job_id)
    if job is None:
        raise PipelineError(f"job {job_id} not found")
    return job
