"""Jobs and their lifecycle: the statuses a job moves through and which moves are allowed.

Pure domain: no I/O. The DynamoDB adapter enforces these rules with conditional writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    WAITING = "WAITING"  # in our queue for provider capacity (t2v.capacity): no provider task yet
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DOWNLOADING = "DOWNLOADING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_cancelable(self) -> bool:
        """Whether a cancel may work: the provider cancels only tasks not yet RUNNING."""
        return not self.is_terminal and self not in {JobStatus.RUNNING, JobStatus.DOWNLOADING}


TERMINAL: Final = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT})

# Forward moves only; any active status may end in FAILED, CANCELED or TIMED_OUT.
_ORDER: Final = [
    JobStatus.ACCEPTED,
    JobStatus.WAITING,
    JobStatus.SUBMITTED,
    JobStatus.PENDING,
    JobStatus.RUNNING,
    JobStatus.DOWNLOADING,
    JobStatus.SUCCEEDED,
]


def can_move(current: JobStatus, new: JobStatus) -> bool:
    """Whether a job in `current` may move to `new` (staying put is allowed and a no-op)."""
    if current == new:
        return not current.is_terminal
    if current.is_terminal:
        return False
    if new in {JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT}:
        return True
    if new == JobStatus.SUCCEEDED:  # only a stored video makes a success
        return current == JobStatus.DOWNLOADING
    return _ORDER.index(new) > _ORDER.index(current)


def statuses_that_may_move_to(new: JobStatus) -> list[JobStatus]:
    """The statuses from which `new` is reachable; the adapter turns this into a condition."""
    return [s for s in JobStatus if s != new and can_move(s, new)]


class TaskStatus(StrEnum):
    """The provider's vocabulary for a task (DashScope `task_status`)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"
    SUSPENDED = "SUSPENDED"


# Provider task status -> job status while the job is still being generated.
PROVIDER_TO_JOB: Final = {
    TaskStatus.PENDING: JobStatus.PENDING,
    TaskStatus.SUSPENDED: JobStatus.PENDING,
    TaskStatus.RUNNING: JobStatus.RUNNING,
}


def owner_status_key(owner: str | None, status: JobStatus) -> str | None:
    """The `by_owner_status` index's key of an ended job: its owner's jobs that ended so. None for
    a job with no owner or not ended: the index is sparse, ended jobs only (they are the many; the
    few active ones are the newest, which a filter over `by_owner` finds at once)."""
    return f"{owner}#{status.value}" if owner and status.is_terminal else None


def listed_as(owner: str | None, status: JobStatus) -> dict[str, str]:
    """What a job's move to `status` writes besides it: its `owner_status`, once it ended."""
    key = owner_status_key(owner, status)
    return {} if key is None else {"owner_status": key}


def derive_job_id(*parts: str) -> str:
    """A deterministic job id from the identity of the trigger (bucket/key/version/line, event id, ...).

    The same trigger delivered twice yields the same id, so it starts nothing new. The id is also a
    valid Step Functions execution name (at most 80 characters of [A-Za-z0-9-_]).
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"job-{digest[:32]}"


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: JobStatus
    at: AwareDatetime


class JobRecord(BaseModel):
    """One job as the repository stores it, parsed once there (datetimes, enums)."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True)

    job_id: str = Field(alias="pk")
    status: JobStatus
    history: list[HistoryEntry] = Field(default_factory=list)
    request: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    origin: dict[str, Any] = Field(default_factory=dict)
    execution: str | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    deadline_at: AwareDatetime | None = None
    submitted_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    polls: int = 0
    last_polled_at: AwareDatetime | None = None
    last_error: str | None = None
    # the provider task
    task_id: str | None = None
    request_ids: list[str] = Field(default_factory=list)
    create_claimed_at: AwareDatetime | None = None
    create_sent_at: AwareDatetime | None = None
    create_ambiguous_at: AwareDatetime | None = None
    reconciled: bool = False
    # adopted by listing before the task showed its request: checked once it does (usecases.poll)
    adopted_unproven: bool = False
    owner: str | None = None  # the IAM identity the job belongs to (API callers; see usecases.videos)
    # a line of a batch (t2v.batches): its batch, its line number, and whether its end is announced
    batch_id: str | None = None
    batch_line: int | None = None
    quiet: bool = False  # a batch line's end is not announced on its own (the batch announces once)
    # the daily budgets (t2v.adapters.budget): charged once, refunded at most once (t2v.billing)
    budget_day: str | None = None
    billed_seconds: int | None = None
    budget_owner: str | None = None  # whose `budget#<day>#<owner>` counter the charge went to
    billing_outcome: str | None = None  # t2v.billing.BillingOutcome, recorded with the end
    refunded_at: AwareDatetime | None = None
    # provider capacity (t2v.adapters.capacity_leases): in our queue, then holding a lease
    queue_owner: str | None = None
    queue_key: str | None = None
    queued_at: AwareDatetime | None = None
    lease_at: AwareDatetime | None = None
    capacity_turns: int = 0
    queued_seconds: float | None = None  # the provider's own queue time, once the task ran
    # the end
    error_code: str | None = None
    error_message: str | None = None
    error_request_id: str | None = None
    usage: dict[str, Any] | None = None
    s3_bucket: str | None = None
    s3_key: str | None = None
    metadata_key: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    # the announcement
    notified_at: AwareDatetime | None = None
    event_sent_at: AwareDatetime | None = None

    @property
    def notified(self) -> bool:
        return self.notified_at is not None


# Owners of a provider task's ownership record other than a job id (see t2v.usecases.reconcile).
CONTESTED = "contested"  # owner of a provider task that more than one job could have made
FOREIGN = "foreign"  # owner of a provider task shown to come from another client's request


class Write(NamedTuple):
    """A conditional write's result: whether it was made, and the job as it stands after it."""

    done: bool
    job: JobRecord


@dataclass(frozen=True, slots=True)
class HintRecorded:
    """What recording a task-finished push found on the job (see t2v.push)."""

    duplicate: bool  # this event id was recorded before (EventBridge delivered it again)
    finished: bool  # the job already ended: nothing to wake
    token: str | None  # the task token of the wait parked now, if any
    spent: bool = False  # the job had its MAX_PUSH_WAKES pushes: this one is ignored (polling goes on)


@dataclass(frozen=True, slots=True)
class Parked:
    """What parking a wait found on the job (see t2v.push)."""

    hint_pending: bool  # a push came after the last status turn began: look now
    finished: bool  # the job ended meanwhile (e.g. canceled): let the workflow see it now
    queued: bool = False  # still in our capacity queue, no lease yet: a capacity wait stays parked
