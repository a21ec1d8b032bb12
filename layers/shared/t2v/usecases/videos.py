"""The REST API's use cases: accept a video request, look jobs up, list them, cancel one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from t2v.adapters.jobs_repo import InvalidCursorError
from t2v.api.checks import check_cursor
from t2v.api.views import Accepted, JobPage, JobView, VideoView, job_view, links
from t2v.config import ApiSettings
from t2v.contract import Ended, ExecutionInput
from t2v.errors import (
    CreateInProgressError,
    IdempotencyConflictError,
    JobNotFoundError,
    NotCancelableError,
    TerminalProviderError,
)
from t2v.jobs import JobRecord, JobStatus, derive_job_id
from t2v.request import FieldError, InvalidRequestError, VideoRequest
from t2v.times import utcnow
from t2v.usecases.announce import AnnounceDeps, end_job
from t2v.usecases.ports import ProviderClient, Repo

SOURCE: Final = "api"
# The provider's answer when a task has left PENDING (DashScope: "please confirm ... PENDING status").
PROVIDER_REFUSED_CANCEL: Final = frozenset({"UnsupportedOperation"})
MAX_LIST_ROUNDS: Final = 10


class ApiRepo(Repo, Protocol):
    def list_jobs(
        self, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[JobRecord], str | None]: ...
    def remember_idempotency_key(self, key: str, job_id: str, *, now: datetime) -> str: ...


class Executions(Protocol):
    """One execution per job, named by the job id (t2v.adapters.workflow.Workflow)."""

    def start(self, job_id: str, payload: dict[str, Any]) -> bool: ...
    def stop(self, job_id: str, *, cause: str) -> bool: ...


class Presigner(Protocol):
    def presign(self, *, bucket: str, key: str, expires_in: int = 900) -> str: ...


@dataclass
class ApiDeps:
    repo: ApiRepo
    executions: Executions
    store: Presigner
    provider: Callable[[], ProviderClient]
    outcomes: AnnounceDeps  # canceling ends the job and announces it
    settings: ApiSettings
    clock: Callable[[], datetime] = utcnow


def accept_video(
    request: VideoRequest, *, idempotency_key: str | None, origin: dict[str, Any], deps: ApiDeps
) -> Accepted:
    """Record the job (so GET works at once) and start its execution, at most once per key."""
    now = deps.clock()
    if idempotency_key is not None:
        job_id = deps.repo.remember_idempotency_key(
            idempotency_key, derive_job_id(SOURCE, idempotency_key), now=now
        )
    else:
        job_id = derive_job_id(SOURCE, uuid.uuid4().hex)
    body = request.model_dump(exclude_none=True)
    job, created = deps.repo.create_if_absent(
        job_id,
        request=body,
        source=SOURCE,
        origin=origin,
        now=now,
        deadline_at=deps.settings.deadline_from(now),
    )
    if not created and job.request != body:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used with a different request body; "
            "send the same body to retry, or use a new key for a new video"
        )
    if job.status == JobStatus.ACCEPTED:
        # Also on a retry: heals a first attempt that recorded the job but died before starting it.
        execution = ExecutionInput(
            job_id=job_id, request=job.request, source=SOURCE, origin=job.origin or origin
        )
        deps.executions.start(job_id, execution.model_dump(mode="json"))
    return Accepted(job_id=job_id, links=links(job_id))


def get_video(job_id: str, deps: ApiDeps) -> JobView:
    job = _job(job_id, deps)
    video = None
    if job.status == JobStatus.SUCCEEDED and job.s3_bucket and job.s3_key:
        expires = deps.settings.presign_seconds
        video = VideoView(
            uri=f"s3://{job.s3_bucket}/{job.s3_key}",
            url=deps.store.presign(bucket=job.s3_bucket, key=job.s3_key, expires_in=expires),
            expires_in=expires,
            bytes=job.bytes,
            sha256=job.sha256,
        )
    return job_view(job, video)


def list_videos(*, status: JobStatus | None, limit: int, cursor: str | None, deps: ApiDeps) -> JobPage:
    """Most recent first. A status filter can leave DynamoDB pages short, so read on to fill `limit`."""
    if cursor is not None:
        check_cursor(cursor)
    items: list[JobRecord] = []
    for _ in range(MAX_LIST_ROUNDS):
        # Never read more than is still missing: the cursor then points right after the last item.
        try:
            jobs, cursor = deps.repo.list_jobs(
                status=status.value if status else None, limit=limit - len(items), cursor=cursor
            )
        except InvalidCursorError as exc:  # well-formed, yet DynamoDB refused it as a start key
            raise InvalidRequestError([FieldError("cursor", str(exc))]) from None
        items.extend(jobs)
        if cursor is None or len(items) >= limit:
            break
    return JobPage(items=[job_view(j) for j in items], next_cursor=cursor)


def cancel_video(job_id: str, deps: ApiDeps) -> JobView:
    """Cancel at the provider (only PENDING tasks can be), stop the execution, record CANCELED once."""
    job = _job(job_id, deps)
    if job.status.is_terminal:
        raise NotCancelableError(f"job {job_id} already ended {job.status.value}")
    if job.task_id:
        _cancel_task(job.task_id, deps)
    elif _create_in_flight(job, deps):
        # Canceling now would orphan the task being created (billed, never tracked).
        raise CreateInProgressError(
            f"job {job_id}: the provider task is being created; retry in a few seconds"
        )
    deps.executions.stop(job_id, cause="canceled by the user")
    canceled = Ended(status=JobStatus.CANCELED, code="Canceled", message="canceled by the user")
    end_job(job_id, canceled, deps.outcomes)
    return job_view(_job(job_id, deps))


def _cancel_task(task_id: str, deps: ApiDeps) -> None:
    client = deps.provider()
    try:
        client.cancel_task(task_id)
    except TerminalProviderError as exc:
        if exc.provider_code not in PROVIDER_REFUSED_CANCEL:
            raise
        # Refused: fine if an earlier cancel went through, otherwise the task is past PENDING.
        status = str(client.get_task(task_id).status)
        if status != "CANCELED":
            raise NotCancelableError(
                f"the provider task is already {status}; only PENDING tasks can be canceled"
            ) from None


def _create_in_flight(job: JobRecord, deps: ApiDeps) -> bool:
    """A create claim younger than submit's staleness bound: a create may be on its way."""
    claimed = job.create_claimed_at
    stale = timedelta(seconds=deps.settings.create_claim_stale_seconds)
    return claimed is not None and deps.clock() - claimed < stale


def _job(job_id: str, deps: ApiDeps) -> JobRecord:
    # Only job items: the table also holds task#, budget# and idem# records.
    job = None if "#" in job_id else deps.repo.get(job_id)
    if job is None:
        raise JobNotFoundError(f"no job {job_id}")
    return job
