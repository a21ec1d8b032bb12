"""Which job outcomes give their billed seconds back to the daily budgets (the refund table).

DashScope does not document which outcomes it bills (`../shared/dashscope-contract.md`): this table
is our assumption, kept as data so that it is easy to correct. Pure domain, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from t2v.jobs import JobRecord, JobStatus, TaskStatus


class BillingOutcome(StrEnum):
    """How a job ended, as far as the provider's bill is concerned."""

    SUCCEEDED = "succeeded"  # a video: billed
    NO_TASK = (
        "no_task"  # ended before a provider task existed (create refused, queue wait over, canceled queued)
    )
    CANCELED_PENDING = "canceled_pending"  # the task was canceled at the provider (only PENDING tasks can be)
    PROVIDER_FAILED = "provider_failed"  # the provider reported the task FAILED
    FAILED_AFTER_TASK = "failed_after_task"  # the task ran (or may have); ours failed: e.g. the download
    TIMED_OUT = "timed_out"  # our deadline passed while the task existed
    CREATE_UNKNOWN = "create_unknown"  # a create whose outcome was never learned: a task may exist


# Unconfirmed (the provider does not say): True gives the job's seconds back to both day counters.
REFUNDED: Final = MappingProxyType(
    {
        BillingOutcome.SUCCEEDED: False,
        BillingOutcome.NO_TASK: True,
        BillingOutcome.CANCELED_PENDING: True,
        BillingOutcome.PROVIDER_FAILED: True,
        BillingOutcome.FAILED_AFTER_TASK: False,
        BillingOutcome.TIMED_OUT: False,
        BillingOutcome.CREATE_UNKNOWN: False,
    }
)


def billing_outcome(
    job: JobRecord, status: JobStatus, task_status: TaskStatus | None = None
) -> BillingOutcome:
    """The outcome of `job` ending in `status`; `task_status`: the provider's final word on its task,
    when the ender heard one (poll)."""
    if status == JobStatus.SUCCEEDED:
        return BillingOutcome.SUCCEEDED
    if not job.task_id:
        # A create that was sent and never answered may have made a task we never found.
        unknown = job.create_sent_at is not None or job.create_ambiguous_at is not None
        return BillingOutcome.CREATE_UNKNOWN if unknown else BillingOutcome.NO_TASK
    if status == JobStatus.CANCELED:
        return BillingOutcome.CANCELED_PENDING
    if status == JobStatus.TIMED_OUT:
        return BillingOutcome.TIMED_OUT
    if task_status == TaskStatus.FAILED:
        return BillingOutcome.PROVIDER_FAILED
    return BillingOutcome.FAILED_AFTER_TASK


def refundable(job: JobRecord) -> bool:
    """Whether the ended job is owed its seconds back and has not had them (the recorded outcome rules)."""
    if not job.budget_day or job.refunded_at is not None or not job.billed_seconds:
        return False
    recorded = job.billing_outcome
    outcome = BillingOutcome(recorded) if recorded else billing_outcome(job, job.status)
    return REFUNDED[outcome]


# -- the day's counters --------------------------------------------------------------------------

ACCOUNT: Final = "account"
CALLER: Final = "caller"


def day_key(day: str, owner: str | None = None) -> str:
    """The counter's item: the account's day, or one owner's (owners are IAM ARNs)."""
    return f"budget#{day}" if owner is None else f"budget#{day}#{owner}"


@dataclass(frozen=True)
class Caps:
    """The day's caps a charge must fit (0: none); `owner` None charges the account's counter only."""

    account: int
    caller: int = 0
    owner: str | None = None


@dataclass(frozen=True)
class DayCounter:
    """One counter's day: seconds charged (gross) and given back."""

    charged: int = 0
    refunded: int = 0

    @property
    def used(self) -> int:
        return self.charged - self.refunded


@dataclass(frozen=True)
class DayUsage:
    account: DayCounter
    caller: DayCounter
