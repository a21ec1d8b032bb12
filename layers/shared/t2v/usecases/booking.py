"""Booking the poll loop's queries: the first turn of a job, and each next query's slot.

Submit books the first turn and poll every later one; both come here, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from t2v.contract import PollTurn
from t2v.families import tier_of
from t2v.jobs import JobRecord
from t2v.schedule import (
    DISPATCH_LATENCY,
    Observation,
    book_query,
    first_wait,
    phase_of,
)
from t2v.usecases.ports import ProviderDeps


@dataclass(frozen=True)
class Booked:
    """A booked query as the next turn gets it (the booking fields of `PollTurn`)."""

    wait_seconds: int
    slot: int | None  # None tells the next turn it holds no slot and must not query
    latency: float
    returned_at: datetime
    park: bool  # push on: wait in a parked task a push can wake (a task timeout needs at least 1 s)


def first_turn(job: JobRecord, deps: ProviderDeps) -> PollTurn:
    """The loop's first turn, for a job whose task is bound: when to look first."""
    now = deps.clock()
    tier = tier_of(job.request)
    submitted_at = job.submitted_at or now
    deadline = job.deadline_at or deps.settings.deadline_from(now)
    obs = Observation(
        now=now.timestamp(),
        submitted_at=submitted_at.timestamp(),
        deadline=deadline.timestamp(),
        active_jobs=deps.stats.active_jobs(),
    )
    policy = deps.settings.poll_policy()
    wait = first_wait(obs, deps.stats.history(tier), policy, phase=phase_of(job.job_id))
    booked = book(wait, deadline=deadline, deps=deps, phase=phase_of(job.job_id))
    return PollTurn(
        job_id=job.job_id,
        task_id=str(job.task_id),
        tier=tier,
        submitted_at=submitted_at,
        deadline_at=deadline,
        polls=job.polls,
        **vars(booked),
    )


def book(
    wait: float,
    *,
    deadline: datetime,
    deps: ProviderDeps,
    latency: float = DISPATCH_LATENCY,
    hinted: bool = False,
    phase: float = 0.0,
) -> Booked:
    """Book the next query's slot in the shared ledger, and line the return up with it (`hinted`:
    a look a push asked for, see `t2v.schedule.book_query`)."""
    now = deps.clock().timestamp()  # now, not at entry: the work since then shifts the landing
    policy = deps.settings.poll_policy()
    booking = book_query(
        deps.stats,
        wait,
        now=now,
        deadline=deadline.timestamp(),
        active_jobs=deps.stats.active_jobs(),
        policy=policy,
        latency=latency,
        hinted=hinted,
        phase=phase,
    )
    deps.sleep(booking.pause)  # under a second: lines the query up with the start of its slot
    return Booked(
        wait_seconds=booking.wait_seconds,
        slot=booking.slot,
        latency=round(latency, 3),
        returned_at=datetime.fromtimestamp(round(now + booking.pause, 3), UTC),
        park=policy.push and booking.wait_seconds >= 1,
    )
