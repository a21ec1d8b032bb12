"""The sweeper: no job stays unfinished, or finished and unannounced, for good.

Run on a schedule (template.yaml, `SweeperFunction`). Each run reads the jobs of the look-back window
that are not terminal, or terminal and not fully announced, and that nothing has touched for
`sweep_grace_seconds`, and repairs what a crash (a killed Lambda, a 29 s gateway timeout, a lost
start) can leave behind:

- ACCEPTED and no execution: recorded, never started (the API or intake died in between): start it.
- not terminal, its execution ended or never existed past ACCEPTED: nothing will ever finish it. End it
  FAILED (`WorkflowEnded`), cancelling its provider task while that is still PENDING, and announce it.
- terminal and not fully announced (the announcer died): announce it.

It also counts the jobs past their deadline that are not terminal (`overdue`), whatever it did with
them: a job whose execution still runs past every limit is one nothing here can repair.

Adapters are passed in (`SweepDeps`): the use case does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from t2v.config import SweeperSettings
from t2v.contract import Ended, ExecutionInput
from t2v.jobs import JobRecord, JobStatus
from t2v.signals import NoSignals, Signal, Signals
from t2v.times import utcnow
from t2v.usecases.announce import AnnounceDeps, announce_once, end_job
from t2v.usecases.capacity import Governor
from t2v.usecases.ports import JobStore, ProviderClient, job_or_fail
from t2v.usecases.submit import cancel_orphan

RUNNING = "RUNNING"


class Executions(Protocol):
    def start(self, job_id: str, payload: dict[str, Any]) -> bool: ...
    def status(self, job_id: str) -> str | None: ...


@dataclass
class SweepDeps:
    repo: JobStore
    executions: Executions
    provider: Callable[[], ProviderClient]
    outcomes: AnnounceDeps
    settings: SweeperSettings
    clock: Callable[[], datetime] = utcnow
    capacity: Governor | None = None  # reclaims the leases of holders that ended or vanished
    signals: Signals = field(default_factory=NoSignals)  # the operator's metrics (each run, zeros too)
    # Writes owner_status onto some of the jobs that ended before it was kept; how many (None: off).
    backfill: Callable[[], int] | None = None


@dataclass
class SweepReport:
    started: list[str]
    ended: list[str]
    announced: list[str]
    reclaimed: list[str] = field(default_factory=list)  # capacity leases given back
    overdue: list[str] = field(default_factory=list)  # not terminal, past the deadline (no repair)
    indexed: int = 0  # old ended jobs given their owner_status (GSI by_owner_status), no repair

    @property
    def repairs(self) -> int:
        """What a crash left behind and this run put right: each one means something broke."""
        return len(self.started) + len(self.ended) + len(self.announced) + len(self.reclaimed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "ended": self.ended,
            "announced": self.announced,
            "reclaimed": self.reclaimed,
            "overdue": self.overdue,
            "indexed": self.indexed,
        }


def sweep(deps: SweepDeps) -> SweepReport:
    now = deps.clock()
    report = SweepReport([], [], [])
    candidates = deps.repo.sweep_candidates(
        since=now - timedelta(hours=deps.settings.sweep_lookback_hours),
        untouched_since=now - timedelta(seconds=deps.settings.sweep_grace_seconds),
    )
    for job in candidates:
        if job.status.is_terminal:
            announce_once(job_or_fail(deps.outcomes.repo, job.job_id), deps.outcomes)
            report.announced.append(job.job_id)
            continue
        if is_overdue(job, now, deps.settings):
            report.overdue.append(job.job_id)
        execution = deps.executions.status(job.job_id)
        if execution == RUNNING:
            continue
        if execution is None and job.status == JobStatus.ACCEPTED:
            deps.executions.start(job.job_id, start_input(job).model_dump(mode="json"))
            report.started.append(job.job_id)
            continue
        if _end(job, execution, deps):
            report.ended.append(job.job_id)
    if deps.capacity is not None:
        report.reclaimed = deps.capacity.reclaim(lambda job_id: _status_of(job_id, deps.repo))
    measure(report, deps.signals)
    if deps.backfill is not None:  # last: the repairs above never wait for it
        report.indexed = deps.backfill()
    return report


def measure(report: SweepReport, signals: Signals) -> None:
    """Every run tells all three, zeros included: an alarm then tells "all well" from "no sweeps"."""
    signals.count(Signal.SWEEPER_REPAIRS, report.repairs)
    signals.count(Signal.UNRECORDED_ENDINGS, len(report.ended))
    signals.count(Signal.OVERDUE_JOBS, len(report.overdue))


def is_overdue(job: JobRecord, now: datetime, settings: SweeperSettings) -> bool:
    """Past the time by which the job must have ended, by more than a sweep's grace. A job waiting in
    our queue for capacity has its own limit (MaxQueueSeconds from when it queued; its deadline starts
    with its lease)."""
    if job.status == JobStatus.WAITING and job.lease_at is None:
        queued = job.queued_at or job.created_at
        limit = None if queued is None else queued + timedelta(seconds=settings.max_queue_seconds)
    else:
        limit = job.deadline_at
    return limit is not None and now > limit + timedelta(seconds=settings.sweep_grace_seconds)


def _status_of(job_id: str, repo: JobStore) -> str | None:
    job = repo.get(job_id)
    return None if job is None else job.status.value


def start_input(job: JobRecord) -> ExecutionInput:
    """The execution input of a recorded job, as the API and intake start it."""
    return ExecutionInput(
        job_id=job.job_id,
        request=job.request,
        source=job.source or "unknown",
        origin=dict(job.origin),
    )


def _end(job: JobRecord, execution: str | None, deps: SweepDeps) -> bool:
    current = deps.repo.get(job.job_id)  # the execution may have finished the job since the scan
    if current is None or current.status.is_terminal:
        return False
    if current.task_id:
        cancel_orphan(deps.provider(), current.task_id)  # a task nobody polls must not run on, billed
    why = "never started" if execution is None else f"ended {execution}"
    ended = Ended(
        status=JobStatus.FAILED, code="WorkflowEnded", message=f"the job's workflow {why} before the job did"
    )
    end_job(job.job_id, ended, deps.outcomes, seen=current)
    return True
