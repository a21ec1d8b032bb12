"""A reader's look: reading one job (`GET /videos/{id}`) asks the provider how its task stands, so
PENDING and RUNNING show as they happen even while push mode leaves the workflow asleep until the
task ends.

A look is the API's own (the workflow is not woken) and spends what the poll schedule spends: one
query booked in the shared one-second ledger (`t2v.adapters.poll_stats`), taken only from a second
the schedule leaves spare, so it never crowds out a scheduled look. At most one per job per
`LOOK_EVERY_SECONDS`, however many read it: the job's `looked_at` is claimed by a conditional
write first. Nobody reading: no looks, and push stays at about one query per job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from t2v.errors import ProviderError
from t2v.jobs import PROVIDER_TO_JOB, JobRecord, JobStatus, TaskStatus
from t2v.schedule import Policy, SlotLedger, queue_and_run
from t2v.usecases.ports import JobStore, ProviderClient

LOOK_EVERY_SECONDS: Final = 5.0
LOOK_TIMEOUT_SECONDS: Final = 3.0  # a read waits at most this long for the provider's answer
# A look takes a second only while the second's fill is under this share of the query budget: the
# rest of every second stays the schedule's (its safety-net looks, and the looks pushes ask for).
LOOK_SHARE: Final = 0.25
# What a look can change: the task's wait at the provider and its start. Its end is the workflow's.
LOOKED_AT_STATUSES: Final = frozenset({JobStatus.SUBMITTED, JobStatus.PENDING})


@dataclass(frozen=True)
class LookDeps:
    repo: JobStore
    ledger: SlotLedger
    provider: Callable[[], ProviderClient]
    policy: Policy
    clock: Callable[[], datetime]


def look_limit(policy: Policy) -> int:
    """The fill of a second below which a reader's look may take it (0: looks never run, when the
    budget is a single query a second)."""
    return 0 if policy.slot_limit < 2 else max(1, math.floor(policy.slot_limit * LOOK_SHARE))


def looked(job: JobRecord, deps: LookDeps) -> JobRecord:
    """The job as the provider says it stands now, when a look is due and a second is spare; else as
    recorded. Never fails the read: no news is shown as what was recorded."""
    if job.task_id is None or job.status not in LOOKED_AT_STATUSES:
        return job
    now = deps.clock()
    limit = look_limit(deps.policy)
    if limit < 1 or not deps.repo.claim_look(
        job.job_id, now=now, before=now - timedelta(seconds=LOOK_EVERY_SECONDS)
    ):
        return job  # looked at lately, by this reader or another
    if not deps.ledger.take(math.floor(now.timestamp()), limit):
        return job  # this second is the schedule's
    try:
        info = deps.provider().get_task(job.task_id)
    except ProviderError:
        return job
    status = str(info.status)
    new = PROVIDER_TO_JOB.get(TaskStatus(status)) if status in TaskStatus.__members__ else None
    if new is None or new == job.status:
        return job
    fields = {}
    queued, _ = queue_and_run(
        {"submit_time": info.submit_time, "scheduled_time": info.scheduled_time, "end_time": None}
    )
    if new == JobStatus.RUNNING and queued is not None:
        fields["queued_seconds"] = round(queued, 3)  # the provider's queue time: the view's ETA uses it
    # Only while the job still holds the task looked at: a task released meanwhile (shown to be
    # another client's, the job now on its own new task) says nothing about the job.
    moved = deps.repo.transition(
        job.job_id, new, now=deps.clock(), fields=fields, expect={"task_id": job.task_id}
    )
    return moved.job  # not moved: the workflow moved it meanwhile; show its move
