"""Submit: validate the request and create the provider task exactly once for the job."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from t2v.contract import PollTurn, SubmitInput
from t2v.errors import (
    AmbiguousCreateError,
    CreateInProgressError,
    JobAlreadyFinishedError,
    PipelineError,
    RetryableProviderError,
    TerminalProviderError,
)
from t2v.jobs import JobRecord
from t2v.request import VideoRequest, parse_request
from t2v.times import iso
from t2v.usecases.booking import first_turn
from t2v.usecases.ports import ProviderClient, ProviderDeps
from t2v.usecases.reconcile import Reconciled, reconcile


def submit_job(event: SubmitInput, deps: ProviderDeps) -> PollTurn:
    """Claim the job's create, create the task once, and book the first poll.

    The door that started the execution recorded the job already; submit records it only when it
    is invoked on its own (then it is the door).
    """
    job_id = event.job_id
    request = parse_request(event.request, defaults={"model": deps.settings.model_name})
    now = deps.clock()
    job = deps.repo.get(job_id)
    if job is None:
        job, _ = deps.repo.create_if_absent(
            job_id,
            request=request.model_dump(exclude_none=True),
            source=event.source,
            origin=dict(event.origin),
            now=now,
            deadline_at=deps.settings.deadline_from(now),
            execution=event.execution,
        )
    if job.task_id:
        return first_turn(job, deps)
    if job.status.is_terminal:
        raise JobAlreadyFinishedError(f"job {job_id} already ended {job.status}")
    if deps.settings.daily_budget_seconds:
        deps.repo.charge_budget(
            job,
            day=now.strftime("%Y-%m-%d"),
            seconds=request.billed_seconds,
            cap=deps.settings.daily_budget_seconds,
            now=now,
        )
    stale_before = now - timedelta(seconds=deps.settings.create_claim_stale_seconds)
    claim = deps.repo.claim_create(job_id, now=now, stale_before=stale_before)
    if not claim.done:
        current = claim.job
        if current.task_id:
            return first_turn(current, deps)
        if current.create_ambiguous_at is None:
            raise CreateInProgressError(f"job {job_id}: another invocation is creating the task")
        if (adopted := reconcile(current, request, deps).adopted) is not None:
            return first_turn(adopted, deps)
        raise AmbiguousCreateError("create outcome still unknown; waiting before any new create")
    if job.create_claimed_at:
        # A previous claim went stale: its create may have reached the provider. Never create twice.
        claimed = _close_dead_create(claim.job, now, deps)
        found = reconcile(claimed, request, deps)
        if found.adopted is not None:
            return first_turn(found.adopted, deps)
        if found.verdict == Reconciled.UNDECIDED:
            raise AmbiguousCreateError("an unclaimed provider task may be ours; waiting until it can be told")
    return _create(claim.job, request, deps)


def _close_dead_create(job: JobRecord, now: datetime, deps: ProviderDeps) -> JobRecord:
    """The invocation that sent the last create is dead (its claim went stale): whatever task that
    create made exists by now, so its window ends here rather than CREATE_MAX_SECONDS after sending."""
    sent, answered = job.create_sent_at, job.create_ambiguous_at
    if sent is None or (answered is not None and answered >= sent):
        return job
    return deps.repo.update_fields(job.job_id, {"create_ambiguous_at": iso(now)}, now=now)


def _create(job: JobRecord, request: VideoRequest, deps: ProviderDeps) -> PollTurn:
    client = deps.client()
    # When the create was sent bounds which provider tasks it can have made (see reconcile).
    deps.repo.update_fields(job.job_id, {"create_sent_at": iso(deps.clock())}, now=deps.clock())
    try:
        created = client.create_task(request)
    except AmbiguousCreateError as exc:
        lost = deps.repo.update_fields(
            job.job_id,
            {"create_ambiguous_at": iso(deps.clock()), "last_error": str(exc)},
            now=deps.clock(),
        )
        if (adopted := reconcile(lost, request, deps).adopted) is not None:
            return first_turn(adopted, deps)
        raise
    except TerminalProviderError as exc:
        deps.repo.update_fields(
            job.job_id,
            {
                "error_code": exc.provider_code or exc.code,
                "error_message": exc.provider_message or str(exc),
                "error_request_id": exc.request_id,
            },
            now=deps.clock(),
        )
        deps.repo.release_claim(job.job_id)  # refused: no task exists, none can be ours
        raise
    except RetryableProviderError:
        deps.repo.release_claim(job.job_id)  # refused or never sent: a new create is safe
        raise
    bound = deps.repo.record_task(
        job.job_id, task_id=created.task_id, request_id=created.request_id, now=deps.clock()
    )
    current = bound.job
    if bound.done:
        return first_turn(current, deps)
    if current.task_id != created.task_id:
        # Canceled (or bound to another task) while the create was in flight: a task nobody will
        # ever poll must not run on, billed and unseen.
        cancel_orphan(client, created.task_id)
        if current.status.is_terminal or not current.task_id:
            raise JobAlreadyFinishedError(
                f"job {job.job_id} ended {current.status} while its task was created"
            )
    return first_turn(current, deps)


def cancel_orphan(client: ProviderClient, task_id: str) -> None:
    """Cancel a task no job will track; the provider cancels only PENDING tasks, so this is best
    effort (past PENDING, or the provider unreachable: nothing more can be done about it here)."""
    with contextlib.suppress(PipelineError):
        client.cancel_task(task_id)
