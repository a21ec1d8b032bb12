"""The ports the use cases talk through, and the dependencies submit and poll share."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from t2v.config import ProviderSettings
from t2v.errors import PipelineError
from t2v.jobs import JobRecord, JobStatus, Write
from t2v.provider import CanceledTask, CreatedTask, TaskInfo
from t2v.request import VideoRequest
from t2v.schedule import GenerationTier, TierHistory
from t2v.times import utcnow


class ProviderClient(Protocol):
    def create_task(self, request: VideoRequest) -> CreatedTask: ...
    def get_task(self, task_id: str) -> TaskInfo: ...
    def cancel_task(self, task_id: str) -> CanceledTask: ...
    def iter_tasks(
        self, *, start_time: datetime, end_time: datetime, model_name: str | None = None
    ) -> Iterable[TaskInfo]: ...


class Repo(Protocol):
    def get(self, job_id: str) -> JobRecord | None: ...
    def owner_of_task(self, task_id: str) -> str | None: ...
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
    ) -> tuple[JobRecord, bool]: ...
    def claim_create(self, job_id: str, *, now: datetime, stale_before: datetime) -> Write: ...
    def release_claim(self, job_id: str) -> None: ...
    def unbound_creates(self, *, since: datetime) -> list[JobRecord]: ...
    def contest_task(self, task_id: str, *, job_id: str, now: datetime) -> None: ...
    def record_task(self, job_id: str, *, task_id: str, request_id: str | None, now: datetime) -> Write: ...
    def release_task(self, job_id: str, *, task_id: str, now: datetime) -> bool: ...
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
    def claim_notification(
        self, job_id: str, *, token: str, now: datetime, stale_before: datetime
    ) -> Write: ...
    def mark_notified(self, job_id: str, *, now: datetime, message_id: str | None = None) -> bool: ...
    def charge_budget(self, job: JobRecord, *, day: str, seconds: int, cap: int, now: datetime) -> bool: ...


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
    """What submit, reconcile and poll use: the jobs, the provider and the shared poll schedule."""

    repo: Repo
    client: Callable[[], ProviderClient]
    settings: ProviderSettings
    stats: PollStatsLike  # no default: a wiring slip must fail, not drop the account-wide query budget
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    # Reads the provider key again, past its cache (the provider refused the cached one).
    refresh_key: Callable[[], None] = lambda: None


def job_or_fail(repo: Repo, job_id: str) -> JobRecord:
    job = repo.get(job_id)
    if job is None:
        raise PipelineError(f"job {job_id} not found")
    return job
