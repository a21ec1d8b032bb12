"""The REST API's use cases: accept a video request, look jobs up, list them, cancel one.

They answer with job records; what the API shows of them (views, links, progress, video URLs) is
built in `t2v.api`."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final, Protocol

from t2v.billing import ACCOUNT, CALLER, DayUsage
from t2v.config import ApiSettings
from t2v.contract import Ended, ExecutionInput
from t2v.errors import (
    CreateInProgressError,
    ForbiddenError,
    IdempotencyConflictError,
    InvalidCursorError,
    JobNotFoundError,
    NotCancelableError,
    TerminalProviderError,
)
from t2v.images import check_places
from t2v.jobs import JobRecord, JobStatus, derive_job_id
from t2v.request import FieldError, InvalidRequestError, RequestBase
from t2v.times import iso, utcnow
from t2v.usecases.announce import AnnounceDeps, end_job
from t2v.usecases.ports import BudgetStore, IdempotencyStore, JobStore, ProviderClient

SOURCE: Final = "api"
# The provider's answer when a task has left PENDING (DashScope: "please confirm ... PENDING status").
PROVIDER_REFUSED_CANCEL: Final = frozenset({"UnsupportedOperation"})
MAX_LIST_ROUNDS: Final = 10
NOT_A_CURSOR: Final = "not a cursor this API returned (use next_cursor as is)"
# A cancel re-reads the job when it changed between the check and the write; a create runs once per job.
MAX_CANCEL_ROUNDS: Final = 3
CANCELED_BY_USER: Final = Ended(status=JobStatus.CANCELED, code="Canceled", message="canceled by the user")


@dataclass(frozen=True)
class Caller:
    """Who calls: the IAM identity API Gateway verified (its user or role ARN). A job belongs to the
    caller that created it; only an admin (`ApiSettings.admin_principals`) sees every job."""

    principal: str
    admin: bool = False

    def owns(self, job: JobRecord) -> bool:
        return self.admin or job.owner == self.principal


def caller_from(principal: str | None, settings: ApiSettings) -> Caller:
    if not principal:
        raise ForbiddenError("the request carries no IAM identity; call the API with SigV4-signed requests")
    return Caller(principal, admin=principal in settings.admins)


def scoped_key(caller: Caller, idempotency_key: str) -> str:
    """An Idempotency-Key is the caller's own: the same key from two callers names two requests."""
    return hashlib.sha256(f"{caller.principal}\x1f{idempotency_key}".encode()).hexdigest()


# Which budget refused, as the refusal names it and the template's parameter that sets it.
BUDGET_NAMES: Final = {
    CALLER: ("your daily budget", "CallerDailyBudgetSeconds"),
    ACCOUNT: ("the account's daily budget", "DailyBudgetSeconds"),
}


class DailyBudgetError(InvalidRequestError):
    """The request's billed seconds cannot fit what is left of a day's budget (the caller's or the
    account's): answered 429."""

    code = "BudgetExceeded"

    def __init__(
        self, *, budget: str, seconds: int, left: int, cap: int, renews_at: datetime, retry_after: int
    ) -> None:
        self.budget = budget
        self.retry_after = retry_after
        name, parameter = BUDGET_NAMES[budget]
        super().__init__(
            [
                FieldError(
                    "duration",
                    f"{seconds} billed seconds do not fit the {left} s left of {name} "
                    f"({parameter} {cap}); it renews at {iso(renews_at)} (00:00 UTC)",
                )
            ]
        )


@dataclass(frozen=True)
class Usage:
    """A caller's day: its own counter and the account's, with their caps (0: none)."""

    day: str
    usage: DayUsage
    caller_budget: int
    account_budget: int
    renews_at: datetime

    @property
    def caller_left(self) -> int | None:
        return _left(self.caller_budget, self.usage.caller.used)

    @property
    def account_left(self) -> int | None:
        return _left(self.account_budget, self.usage.account.used)


def _left(cap: int, used: int) -> int | None:
    """None: no cap."""
    return max(0, cap - used) if cap else None


def renewal(now: datetime) -> datetime:
    """When the UTC day of `now` ends and every day's budget starts afresh."""
    return datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=UTC)


class Executions(Protocol):
    """One execution per job, named by the job id (t2v.adapters.workflow.Workflow)."""

    def start(self, job_id: str, payload: dict[str, Any]) -> bool: ...
    def stop(self, job_id: str, *, cause: str) -> bool: ...


@dataclass
class ApiDeps:
    repo: JobStore
    budget: BudgetStore  # the day's budget, checked before a job is accepted
    keys: IdempotencyStore
    executions: Executions
    provider: Callable[[], ProviderClient]
    outcomes: AnnounceDeps  # canceling ends the job and announces it
    settings: ApiSettings
    clock: Callable[[], datetime] = utcnow


@dataclass(frozen=True)
class JobsPage:
    """One page of a listing, most recent first; `next_cursor` reads on (None: no more)."""

    jobs: list[JobRecord]
    next_cursor: str | None


def accept_video(
    request: RequestBase,
    *,
    idempotency_key: str | None,
    origin: dict[str, Any],
    caller: Caller,
    deps: ApiDeps,
) -> JobRecord:
    """Record the job (so GET works at once) and start its execution, at most once per caller's key.

    A request that cannot fit the day's remaining budget is refused here; submit still charges the
    budget atomically, so a job that loses a race for the last seconds fails cleanly later.

    Written, then started: a crash (or a 29 s gateway timeout) in between leaves an ACCEPTED job with
    no execution, which a retry with the same key or the sweeper (t2v.sweeper) starts. The answer is
    the job as recorded (by the first attempt, for a retry).
    """
    place = deps.settings.image_place
    # A caller names only images in its own folder of the input-images prefix; an admin, any there.
    folder = None if caller.admin or place is None else place.folder_of(caller.principal)
    check_places(request, place, folder)
    now = deps.clock()
    if idempotency_key is not None:
        key = scoped_key(caller, idempotency_key)
        job_id = deps.keys.remember_idempotency_key(key, derive_job_id(SOURCE, key), now=now)
        if deps.repo.get(job_id) is None:  # a retry of an accepted job is answered as before
            _check_budget(request, caller, deps, now)
    else:
        job_id = derive_job_id(SOURCE, uuid.uuid4().hex)
        _check_budget(request, caller, deps, now)
    body = request.model_dump(exclude_none=True)
    job, created = deps.repo.create_if_absent(
        job_id,
        request=body,
        source=SOURCE,
        origin=origin,
        now=now,
        deadline_at=deps.settings.deadline_from(now),
        owner=caller.principal,
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
    return job


def caller_usage(caller: Caller, deps: ApiDeps) -> Usage:
    """The caller's day and the account's, as the counters stand (GET /usage)."""
    now = deps.clock()
    day = now.strftime("%Y-%m-%d")
    settings = deps.settings
    return Usage(
        day=day,
        usage=deps.budget.day_usage(day, caller.principal),
        caller_budget=settings.caller_daily_budget_seconds,
        account_budget=settings.daily_budget_seconds,
        renews_at=renewal(now),
    )


def _check_budget(request: RequestBase, caller: Caller, deps: ApiDeps, now: datetime) -> None:
    """Refuse what cannot fit the caller's day or the account's (the caller's named first: it is
    the one a caller can do something about). Submit charges both atomically later."""
    if not deps.settings.budgets_on:
        return
    usage = caller_usage(caller, deps)
    seconds = request.billed_seconds
    for budget, left, cap in (
        (CALLER, usage.caller_left, usage.caller_budget),
        (ACCOUNT, usage.account_left, usage.account_budget),
    ):
        if left is not None and seconds > left:
            raise DailyBudgetError(
                budget=budget,
                seconds=seconds,
                left=left,
                cap=cap,
                renews_at=usage.renews_at,
                retry_after=max(1, math.ceil((usage.renews_at - now).total_seconds())),
            )


def get_video(job_id: str, caller: Caller, deps: ApiDeps) -> JobRecord:
    return _job(job_id, caller, deps)


def list_videos(
    *,
    status: JobStatus | None,
    limit: int,
    cursor: str | None,
    caller: Caller,
    deps: ApiDeps,
) -> JobsPage:
    """The caller's jobs (every job for an admin), most recent first. A status filter can leave
    DynamoDB pages short, so read on to fill `limit`.

    A cursor is what a `next_cursor` was, of the same listing; any other is a 400 naming `cursor`
    (the repository refuses it before reading anything)."""
    owner = None if caller.admin else caller.principal
    try:
        return _pages(deps.repo, status.value if status else None, limit, cursor, owner)
    except InvalidCursorError as exc:
        raise InvalidRequestError([FieldError("cursor", str(exc))]) from None


def _pages(repo: JobStore, status: str | None, limit: int, cursor: str | None, owner: str | None) -> JobsPage:
    if cursor == "":  # the repository reads an empty cursor as none; no listing returns one
        raise InvalidCursorError(NOT_A_CURSOR)
    jobs: list[JobRecord] = []
    for _ in range(MAX_LIST_ROUNDS):
        # Never read more than is still missing: the cursor then points right after the last item.
        page, cursor = repo.list_jobs(status=status, limit=limit - len(jobs), cursor=cursor, owner=owner)
        jobs.extend(page)
        if cursor is None or len(jobs) >= limit:
            break
    return JobsPage(jobs, cursor)


def cancel_video(job_id: str, caller: Caller, deps: ApiDeps) -> JobRecord:
    """Cancel a job: at the provider while its task is PENDING, then record CANCELED once.

    The job ends as every job does (`end_job`), on condition that it is still as checked (the same
    task or none, the same create claim or none): a create that began meanwhile makes the write fail,
    and the job is read again and acted on as it is now (its task canceled at the provider while
    PENDING; 409 once RUNNING, or while its create is in flight). CANCELED is recorded and announced
    before the execution is stopped: a crash in between leaves a finished job, whose execution then
    ends by itself. The answer is the job as the cancel left it.
    """
    for _ in range(MAX_CANCEL_ROUNDS):
        job = _job(job_id, caller, deps)
        if job.status.is_terminal:
            raise NotCancelableError(f"job {job_id} already ended {job.status.value}")
        if job.task_id:
            _cancel_task(job.task_id, deps)
        elif _create_unresolved(job, deps):
            # Canceling now would orphan the task being created (billed, never tracked).
            raise CreateInProgressError(
                f"job {job_id}: the provider task is being created; retry in a few seconds"
            )
        claimed = iso(job.create_claimed_at) if job.create_claimed_at else None
        ending = end_job(
            job_id,
            CANCELED_BY_USER,
            deps.outcomes,
            seen=job,
            expect={"task_id": job.task_id, "create_claimed_at": claimed},
        )
        if ending.announced.notified:
            # Also when the write was refused yet the job is CANCELED: this very write applied and its
            # answer was lost (the SDK's retry then fails the condition), or a concurrent DELETE won.
            # The user's cancel holds either way; answering 409 "already ended" would also leave the
            # announcement to the sweeper.
            break
    else:
        raise CreateInProgressError(
            f"job {job_id} kept changing while being canceled; retry in a few seconds"
        )
    deps.executions.stop(job_id, cause=CANCELED_BY_USER.message)
    return ending.job


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


def _create_unresolved(job: JobRecord, deps: ApiDeps) -> bool:
    """A create claim younger than submit's staleness bound (a create may be on its way), or a dead
    create that was sent and may have made a task reconciliation has not found yet."""
    claimed = job.create_claimed_at
    if claimed is None:
        return False
    stale = timedelta(seconds=deps.settings.create_claim_stale_seconds)
    return deps.clock() - claimed < stale or job.create_sent_at is not None


def _job(job_id: str, caller: Caller, deps: ApiDeps) -> JobRecord:
    # Only job items: the table also holds task#, budget# and idem# records. Another caller's job is
    # answered like a missing one: its existence is not the caller's to learn.
    job = None if "#" in job_id else deps.repo.get(job_id)
    if job is None or not caller.owns(job):
        raise JobNotFoundError(f"no job {job_id}")
    return job
