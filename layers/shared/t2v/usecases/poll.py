"""Poll: one provider query per turn of the loop, and when to look next (see `t2v.schedule`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from t2v.capacity import MAX_PUSH_WAKES, held_too_long, usual_queue_seconds
from t2v.contract import Ended, PollDecision, PollTurn, ProviderTimes, SubmitInput, SubmitResult, Succeeded
from t2v.errors import ProviderAuthError, ProviderThrottledError, RetryableProviderError
from t2v.families import parse_request
from t2v.jobs import PROVIDER_TO_JOB, JobStatus, TaskStatus
from t2v.provider import TaskInfo
from t2v.schedule import (
    DEFAULT_QUEUE_SECONDS,
    Observation,
    claim_now,
    estimate_latency,
    next_wait,
    phase_of,
    queue_and_run,
    slot_check,
    woken_early,
)
from t2v.times import iso
from t2v.usecases.booking import book
from t2v.usecases.ports import ProviderDeps, job_or_fail
from t2v.usecases.reconcile import foreign

THROTTLE_FACTOR = 2.0
MAX_BACKOFF_SECONDS = 300


def poll_job(turn: PollTurn, deps: ProviderDeps) -> SubmitResult:
    """One provider query (when a slot is booked): map the provider state and book the next query.
    The task's end frees the job's capacity lease at once, before the video is downloaded."""
    result = _poll(turn, deps)
    if deps.capacity is not None and result.decision not in (PollDecision.WAIT, "QUEUED"):
        deps.capacity.free(turn.job_id, owner=None, queued=False)
    return result


def _poll(turn: PollTurn, deps: ProviderDeps) -> SubmitResult:
    now = deps.clock()
    returned_at, waited = turn.returned_at.timestamp(), turn.wait_seconds
    latency = estimate_latency(turn.latency, returned_at=returned_at, waited=waited, now=now.timestamp())
    policy = deps.settings.poll_policy()
    # With push on, a turn well before its wait was over was woken by a task-finished push: its
    # booked second goes back to the ledger and it claims the current one instead. A wake costs no
    # poll (a flood of pushes cannot spend MaxPolls); wakes have their own bound, MAX_PUSH_WAKES,
    # which the callback keeps (past it a turn counts as a poll again, so nothing is unbounded).
    hinted = policy.push and woken_early(returned_at, waited, now.timestamp())
    woke = hinted and turn.wakes < MAX_PUSH_WAKES
    counted = {"wakes": turn.wakes + 1} if woke else {"polls": turn.polls + 1}
    turn = turn.model_copy(update={**counted, "latency": round(latency, 3)})
    if now >= turn.deadline_at or turn.polls > deps.settings.max_polls:
        reason = "deadline" if now >= turn.deadline_at else f"{deps.settings.max_polls} polls"
        return _last_look(turn, reason, deps, now)
    slot = turn.slot
    if hinted and slot is not None and slot > now.timestamp() + 1:
        deps.stats.release(slot)
        slot = None
    pause = slot_check(slot, now.timestamp())
    if pause is None:  # off its booking: the current second may still have room
        pause = claim_now(deps.stats, deps.clock().timestamp(), policy)
    # `checked_at` is when this turn began: a push recorded after it is news to the next parked wait.
    checked = {"polls": turn.polls, "checked_at": iso(now)}
    if pause is None:
        # Every query needs a booked second: book a later one rather than risk a full one.
        deps.repo.update_fields(turn.job_id, checked, now=now)
        return _waiting(turn, policy.min_wait, deps, task_status=None, hinted=hinted)
    deps.sleep(pause)  # under a second: the booked second has not begun yet
    try:
        info = _query(turn.task_id, deps)
    except (RetryableProviderError, ProviderAuthError) as exc:
        # No news is not a failure: keep polling until the deadline, more slowly after a 429. A key the
        # provider refuses even when read afresh is no reason to abandon the paid task either.
        factor = THROTTLE_FACTOR if isinstance(exc, ProviderThrottledError) else 1.0
        wait = min(
            MAX_BACKOFF_SECONDS, deps.settings.poll_interval_seconds * factor * (1.5 ** min(turn.errors, 6))
        )
        wait = wait * (1 + deps.rng.random() * 0.2)
        deps.repo.update_fields(turn.job_id, {**checked, "last_error": str(exc)}, now=now)
        return _waiting(turn.model_copy(update={"errors": turn.errors + 1}), wait, deps, task_status=None)
    deps.repo.update_fields(turn.job_id, {**checked, "last_polled_at": iso(now)}, now=now)
    turn = turn.model_copy(update={"errors": 0, "request_id": info.request_id or turn.request_id})
    return _map_task(info, turn, deps=deps, now=now, hinted=hinted)


def _query(task_id: str, deps: ProviderDeps) -> TaskInfo:
    """One task query; a refused key (401/403: rotated within its cache) is read afresh and tried once more."""
    try:
        return deps.client().get_task(task_id)
    except ProviderAuthError:
        deps.refresh_key()
        return deps.client().get_task(task_id)


def _last_look(turn: PollTurn, reason: str, deps: ProviderDeps, now: datetime) -> SubmitResult:
    """Out of time: ask the provider once more, and give up only if the task has not finished."""
    timed_out = Ended(
        status=JobStatus.TIMED_OUT, code="Timeout", message=f"no result before the {reason} limit"
    )
    try:
        info = _query(turn.task_id, deps)
    except (RetryableProviderError, ProviderAuthError):
        return _final(turn, PollDecision.TIMED_OUT, timed_out, now)
    deps.repo.update_fields(turn.job_id, {"polls": turn.polls, "last_polled_at": iso(now)}, now=now)
    if str(info.status) in PROVIDER_TO_JOB:
        return _final(turn, PollDecision.TIMED_OUT, timed_out, now)
    return _map_task(info, turn.model_copy(update={"errors": 0}), deps=deps, now=now, hinted=False)


def _release_if_foreign(info: TaskInfo, turn: PollTurn, deps: ProviderDeps) -> SubmitResult | None:
    """A task adopted without proof shows its request now: if it is not ours (another client on the
    account made it), release it and create the job's own task. None: deliver this task."""
    from t2v.usecases.submit import submit_job  # rarely needed: the status function's cold start skips it

    job = job_or_fail(deps.repo, turn.job_id)
    if not job.adopted_unproven or job.task_id != str(info.task_id):
        return None
    request = parse_request(job.request, defaults={"model": deps.settings.model_name})
    if not foreign(info, request):
        deps.repo.update_fields(turn.job_id, {"adopted_unproven": False}, now=deps.clock())
        return None
    deps.tasks.release_task(turn.job_id, task_id=str(info.task_id), now=deps.clock())
    resubmit = SubmitInput(
        job_id=turn.job_id, request=job.request, source=job.source or "unknown", origin=dict(job.origin)
    )
    return submit_job(resubmit, deps).model_copy(update={"polls": turn.polls})


def _waiting(
    turn: PollTurn, wait: float, deps: ProviderDeps, *, task_status: TaskStatus | None, hinted: bool = False
) -> PollTurn:
    booked = book(
        wait,
        deadline=turn.deadline_at,
        latency=turn.latency,
        deps=deps,
        hinted=hinted,
        phase=phase_of(turn.job_id),
    )
    return turn.model_copy(update={"decision": PollDecision.WAIT, "task_status": task_status, **vars(booked)})


def _final(turn: PollTurn, decision: PollDecision, outcome: Succeeded | Ended, now: datetime) -> PollTurn:
    return turn.model_copy(
        update={
            "decision": decision,
            "outcome": outcome,
            "wait_seconds": 0,
            "slot": None,
            "returned_at": now,
            "park": False,
        }
    )


def _map_task(
    info: TaskInfo, turn: PollTurn, *, deps: ProviderDeps, now: datetime, hinted: bool
) -> SubmitResult:
    status = str(info.status)
    if status in PROVIDER_TO_JOB:
        task_status = TaskStatus(status)
        deps.repo.transition(turn.job_id, PROVIDER_TO_JOB[task_status], now=now)
        queued, _ = queue_and_run(_times(info).model_dump())
        if queued is not None and turn.queued_seconds is None:
            # The provider's own queue time, once known, goes on the record too: the API's ETA uses it.
            deps.repo.update_fields(turn.job_id, {"queued_seconds": round(queued, 3)}, now=now)
        if queued is not None:
            turn = turn.model_copy(update={"queued_seconds": round(queued, 3)})
        obs = Observation(
            now=now.timestamp(),
            submitted_at=turn.submitted_at.timestamp(),
            deadline=turn.deadline_at.timestamp(),
            state="RUNNING" if task_status == TaskStatus.RUNNING else "PENDING",
            queued_seconds=queued if queued is not None else turn.queued_seconds,
            active_jobs=deps.stats.active_jobs(),
            hinted=hinted,
        )
        if task_status == TaskStatus.PENDING:
            turn = _held_signal(turn, (now - turn.submitted_at).total_seconds(), deps)
        wait = next_wait(obs, deps.stats.history(turn.tier), deps.settings.poll_policy())
        return _waiting(turn, wait, deps, task_status=task_status, hinted=hinted)
    turn = turn.model_copy(update={"task_status": _task_status(status)})
    held, _ = queue_and_run(_times(info).model_dump())
    if held is not None:
        turn = _held_signal(turn, held, deps)
    if status == TaskStatus.SUCCEEDED:
        return _succeeded(info, turn, deps=deps, now=now)
    if status == TaskStatus.FAILED:
        failed = Ended(
            status=JobStatus.FAILED,
            code=info.code or "TaskFailed",
            message=info.message or "the provider reported the task FAILED",
            task_status=TaskStatus.FAILED,
        )
        return _final(turn, PollDecision.FAILED, failed, now)
    if status == TaskStatus.CANCELED:
        canceled = Ended(
            status=JobStatus.CANCELED,
            code="Canceled",
            message="the task was canceled",
            task_status=TaskStatus.CANCELED,
        )
        return _final(turn, PollDecision.CANCELED, canceled, now)
    unknown = Ended(
        status=JobStatus.FAILED,
        code="TaskUnknown",
        message="the provider no longer knows the task (expired or never existed)",
    )
    return _final(turn, PollDecision.UNKNOWN, unknown, now)


def _succeeded(info: TaskInfo, turn: PollTurn, *, deps: ProviderDeps, now: datetime) -> SubmitResult:
    resubmitted = _release_if_foreign(info, turn, deps)
    if resubmitted is not None:
        return resubmitted
    if not info.video_url:
        no_video = Ended(
            status=JobStatus.FAILED,
            code="NoVideo",
            message="the provider reported SUCCEEDED without a video_url",
        )
        return _final(turn, PollDecision.FAILED, no_video, now)
    succeeded = Succeeded(video_url=info.video_url, usage=_usage(info), provider_times=_times(info))
    return _final(turn, PollDecision.SUCCEEDED, succeeded, now)


def _held_signal(turn: PollTurn, pending: float, deps: ProviderDeps) -> PollTurn:
    """A task PENDING far past its tier's usual queue time is held in the provider's own queue: the
    working cap is too high (lowered once per job). Seen by a poll while it waits, or, with push on
    (few polls), from the provider's times once the task has ended."""
    if deps.capacity is None or turn.held_long:
        return turn
    history = deps.stats.history(turn.tier)
    prior = DEFAULT_QUEUE_SECONDS * deps.settings.generation_time_scale
    if not history.queue or not held_too_long(pending, usual_queue_seconds(history.queue, prior=prior)):
        return turn
    deps.capacity.leases.held_too_long()
    return turn.model_copy(update={"held_long": True})


def _task_status(status: str) -> TaskStatus | None:
    return TaskStatus(status) if status in TaskStatus.__members__ else None


def _usage(info: TaskInfo) -> dict[str, Any]:
    return {} if info.usage is None else info.usage.model_dump(exclude_none=True)


def _times(info: TaskInfo) -> ProviderTimes:
    return ProviderTimes(
        submit_time=info.submit_time, scheduled_time=info.scheduled_time, end_time=info.end_time
    )
