"""How far a job has come and when it should be done, as the API shows it. Pure domain, no I/O.

The expectation comes from the same place the poll schedule takes it: the tier's recent queue
and run times (`t2v.schedule`, learned from the provider's own task times), and, once the task
runs, the provider's own account of how long it queued. What cannot be known is null, never
made up: a job past every prediction has no expected finish, a download has no fraction, a job
that ended without a video has no fraction either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from t2v.jobs import JobStatus
from t2v.schedule import Observation, TierHistory, predicted_finishes, quantile

MAX_OPEN_FRACTION: Final = 0.99  # a job that has not ended is never shown as done


class Phase(StrEnum):
    WAITING = "waiting_for_capacity"  # in our queue: no provider capacity free for it yet
    QUEUED = "queued"  # accepted, submitted, or waiting at the provider
    RUNNING = "running"  # the provider is generating
    DOWNLOADING = "downloading"  # the video is being copied into S3
    DONE = "done"  # ended: SUCCEEDED, FAILED, CANCELED or TIMED_OUT


PHASES: Final[dict[JobStatus, Phase]] = {
    JobStatus.ACCEPTED: Phase.QUEUED,
    JobStatus.WAITING: Phase.WAITING,
    JobStatus.SUBMITTED: Phase.QUEUED,
    JobStatus.PENDING: Phase.QUEUED,
    JobStatus.RUNNING: Phase.RUNNING,
    JobStatus.DOWNLOADING: Phase.DOWNLOADING,
}


@dataclass(frozen=True)
class Estimate:
    phase: Phase
    expected_finish: datetime | None = None
    fraction: float | None = None  # in [0, 1]; below 1 until the job ends


@dataclass(frozen=True)
class ProgressInput:
    """What the job record knows, with parsed times."""

    status: JobStatus
    created_at: datetime | None  # when the request was accepted: the fraction counts from here
    submitted_at: datetime | None  # when the provider accepted the task (our clock): predictions start here
    finished_at: datetime | None
    queued_seconds: float | None  # the provider's own scheduled_time - submit_time, once RUNNING
    # The job's moves (status, when), oldest first: each earlier phase's last fraction is a floor.
    history: tuple[tuple[JobStatus, datetime], ...] = ()


def job_progress(job: ProgressInput, history: TierHistory, now: datetime) -> Estimate:
    if job.status.is_terminal:
        return Estimate(
            Phase.DONE,
            expected_finish=job.finished_at,
            fraction=1.0 if job.status == JobStatus.SUCCEEDED else None,
        )
    estimate = _estimate(job, history, now)
    if estimate.fraction is None:
        return estimate
    # A move to a later phase revises the estimate (a RUNNING task's own queue time replaces the
    # tier's guess) and may lower it; what the last moment of an earlier phase showed stays the floor.
    floor = max((f for f in _phase_ends(job, history, now) if f is not None), default=0.0)
    return replace(estimate, fraction=round(min(MAX_OPEN_FRACTION, max(estimate.fraction, floor)), 3))


def _phase_ends(job: ProgressInput, history: TierHistory, now: datetime) -> list[float | None]:
    """The fraction shown just before each move of the job so far (none for the phases without one)."""
    ends = []
    for (status, _), (_, moved_at) in itertools.pairwise(job.history):
        at = moved_at - timedelta(milliseconds=1)
        if status.is_terminal or moved_at > now or job.created_at is None or at < job.created_at:
            continue
        submitted = job.submitted_at if job.submitted_at is not None and job.submitted_at <= at else None
        then = replace(job, status=status, submitted_at=submitted)
        ends.append(_estimate(then, history, at).fraction)
    return ends


def _estimate(job: ProgressInput, history: TierHistory, now: datetime) -> Estimate:
    phase = PHASES[job.status]
    # The provider's clock starts at submission; the user's when they asked, and the fraction is
    # theirs (it must not fall back when the job moves from ACCEPTED to SUBMITTED).
    start = job.submitted_at or job.created_at
    asked = job.created_at or start
    if phase in (Phase.DOWNLOADING, Phase.WAITING) or start is None or asked is None:
        # Waiting: its start depends on the queue (the view's `capacity`), not on the tier alone.
        return Estimate(phase)
    finish = expected_finish(job, start, history, now)
    if finish is None:
        return Estimate(phase)
    total = max(1e-9, finish - asked.timestamp())
    fraction = min(MAX_OPEN_FRACTION, max(0.0, (now.timestamp() - asked.timestamp()) / total))
    return Estimate(phase, datetime.fromtimestamp(finish, UTC), round(fraction, 3))


def expected_finish(job: ProgressInput, start: datetime, history: TierHistory, now: datetime) -> float | None:
    """The median predicted finish (epoch seconds) among those still ahead; None past all of them."""
    state = {JobStatus.PENDING: "PENDING", JobStatus.RUNNING: "RUNNING"}.get(job.status, "SUBMITTED")
    observation = Observation(
        now=now.timestamp(),
        submitted_at=start.timestamp(),
        deadline=now.timestamp(),  # not used by the prediction
        state=state,  # type: ignore[arg-type]
        queued_seconds=job.queued_seconds if job.status == JobStatus.RUNNING else None,
    )
    ahead = [f for f in predicted_finishes(observation, history) if f > now.timestamp()]
    return quantile(ahead, 0.5) if ahead else None
